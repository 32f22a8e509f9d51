// ClipProbe: page-side helpers.  The WebUI loads every javascript/*.js of an extension
// into the page as a classic script, so the functions below are globals.
//
// - clipprobe_send_to_txt2img(text) / clipprobe_send_to_img2img(text): the "Send pruned
//   prompt" buttons (gradio `_js`/`js`, input: the hidden pruned-prompt textbox).  They put
//   the text into #txt2img_prompt / #img2img_prompt, fire an "input" event so gradio takes
//   the new value, and switch tabs with the WebUI's own switch_to_txt2img() /
//   switch_to_img2img().  Nothing else on those tabs changes.
// - switch_to_clipprobe(): called by the WebUI's paste mechanism (infotext_utils
//   connect_paste_params_buttons runs `switch_to_${tabname}`) after "Send to ClipProbe".
// - recalculate_prompts_clipprobe(): the same mechanism calls `recalculate_prompts_${tabname}`
//   after pasting text; ClipProbe has no token counter, so it only passes its arguments on.
// - clipprobe_submit(...args): the Analyze button's `_js`/`js`, like the WebUI's own
//   submit_extras() (ui.js): makes a task id with the WebUI's randomId(), starts its
//   progress bar with requestProgress(id, #clipprobe_result, null, atEnd) (progressbar.js:
//   polls /internal/progress, shows "In queue", then ClipProbe's text and percentage) and
//   returns the arguments with the id as the first one (the hidden task-id textbox).
//   Without requestProgress (older or forked WebUIs) it only passes an id on.
// - clipprobe_submit_regenerate(...) / clipprobe_submit_bring_in(...) /
//   clipprobe_submit_audit(...) / clipprobe_submit_calibrate(...): the same for the
//   "Regenerate", "Try to bring it in", "Audit" and "Calibrate on this folder" buttons
//   (bars over their own results); the regeneration's
//   section is scrolled into view, since its button sits at the top of the tab.
// - clipprobe_show_phrase(target) and a "click" listener on the document: a click on a
//   phrase of the coloured prompt or of the answer shows its heatmap, marks the phrase
//   and brings the heatmap on screen (see the function).
// - clipprobe_copied_text(node) and a "copy" listener on the document: the report's
//   removed-phrase chips (.cp-removed) are boxes with no text between them, so a browser
//   copies "hokusai", "girl" as "hokusaigirl"; when a selection holds chips, the copied
//   text gets ", " between neighbouring chips and is otherwise the selection's text.

/* global gradioApp, switch_to_txt2img, switch_to_img2img, randomId, requestProgress */

function clipprobe_app() {
    return typeof gradioApp === "function" ? gradioApp() : document;
}

function clipprobe_set_prompt(tabname, text) {
    var textarea = clipprobe_app().querySelector("#" + tabname + "_prompt textarea");
    if (!textarea) {
        return false;
    }
    textarea.value = text;
    var event = new Event("input", {bubbles: true});
    Object.defineProperty(event, "target", {value: textarea});
    textarea.dispatchEvent(event);
    return true;
}

function clipprobe_send_to(tabname, text) {
    if (typeof text !== "string" || text.trim() === "") {
        return false;
    }
    if (!clipprobe_set_prompt(tabname, text)) {
        return false;
    }
    if (tabname === "txt2img" && typeof switch_to_txt2img === "function") {
        switch_to_txt2img();
    } else if (tabname === "img2img" && typeof switch_to_img2img === "function") {
        switch_to_img2img();
    }
    return true;
}

function clipprobe_send_to_txt2img(text) {
    clipprobe_send_to("txt2img", text);
    return [];
}

function clipprobe_send_to_img2img(text) {
    clipprobe_send_to("img2img", text);
    return [];
}

// The top-level tab button of the ClipProbe tab: by its label, else by the position of
// #tab_clipprobe among the tab panels (hidden tabs are not rendered, so positions agree).
function clipprobe_tab_button() {
    var tabs = clipprobe_app().querySelector("#tabs");
    if (!tabs) {
        return null;
    }
    var nav = tabs.querySelector(".tab-nav") || tabs.querySelector("div");
    var buttons = nav ? Array.from(nav.querySelectorAll("button")) : [];
    for (var i = 0; i < buttons.length; i++) {
        if ((buttons[i].textContent || "").trim() === "ClipProbe") {
            return buttons[i];
        }
    }
    var panels = Array.from(tabs.children).filter(function(el) {
        return el.id && el.id.indexOf("tab_") === 0;
    });
    var index = panels.findIndex(function(el) {
        return el.id === "tab_clipprobe";
    });
    return index >= 0 && index < buttons.length ? buttons[index] : null;
}

function switch_to_clipprobe() {
    var button = clipprobe_tab_button();
    if (button) {
        button.click();
    }
    return Array.from(arguments);
}

function recalculate_prompts_clipprobe() {
    return Array.from(arguments);
}

function clipprobe_task_id() {
    if (typeof randomId === "function") {
        return randomId();
    }
    return "task(clipprobe-" + Math.random().toString(36).slice(2, 12) + ")";
}

// The WebUI's progress bar over `containerId`, and the task id as the first argument.
function clipprobe_submit_with_progress(containerId, args) {
    var id = clipprobe_task_id();
    var container = clipprobe_app().querySelector("#" + containerId);
    if (typeof requestProgress === "function" && container && container.parentNode) {
        try {
            requestProgress(id, container, null, function() {});
        } catch (error) {
            console.error("ClipProbe: could not show the progress bar", error);
        }
    }
    args[0] = id;
    return args;
}

// Bring an element on screen with as little scrolling as it takes (none when it is).
function clipprobe_bring_into_view(element, block) {
    if (element && typeof element.scrollIntoView === "function") {
        element.scrollIntoView({block: block || "nearest", behavior: "smooth"});
        return true;
    }
    return false;
}

function clipprobe_submit() {
    return clipprobe_submit_with_progress("clipprobe_result", Array.from(arguments));
}

function clipprobe_submit_regenerate() {
    clipprobe_bring_into_view(clipprobe_app().querySelector("#clipprobe_regenerate_section"), "start");
    return clipprobe_submit_with_progress("clipprobe_regenerate_result", Array.from(arguments));
}

function clipprobe_submit_bring_in() {
    return clipprobe_submit_with_progress("clipprobe_bring_in_result", Array.from(arguments));
}

function clipprobe_submit_audit() {
    return clipprobe_submit_with_progress("clipprobe_audit_result", Array.from(arguments));
}

function clipprobe_submit_calibrate() {
    return clipprobe_submit_with_progress("clipprobe_calibrate_result", Array.from(arguments));
}

// Where a click on a phrase shows its heatmap: the coloured prompt and the answer (both
// next to the heatmap); phrases in the detail sections below only carry their numbers.
var CLIPPROBE_CLICKABLE = ["clipprobe_prompt_view", "clipprobe_result"];

function clipprobe_clickable(node) {
    while (node) {
        if (CLIPPROBE_CLICKABLE.indexOf(node.id) >= 0) {
            return node;
        }
        node = node.parentNode;
    }
    return null;
}

// Only the phrases with `index` wear the selection mark (.cp-selected).
function clipprobe_mark_selected(index) {
    var app = clipprobe_app();
    Array.from(app.querySelectorAll(".cp-selected")).forEach(function(el) {
        el.classList.remove("cp-selected");
    });
    CLIPPROBE_CLICKABLE.forEach(function(id) {
        var area = app.querySelector("#" + id);
        Array.from(area ? area.querySelectorAll(".cp-phrase") : []).forEach(function(el) {
            if (el.getAttribute("data-index") === index) {
                el.classList.add("cp-selected");
            }
        });
    });
}

// A click on a phrase (.cp-phrase[data-index]) of the coloured prompt or the answer: its
// index goes into the hidden #clipprobe_phrase_index textbox (an "input" event, so gradio
// takes it) and the hidden #clipprobe_show_heatmap button is clicked; the server draws the
// stored heatmap into #clipprobe_heatmap_view, which is scrolled on screen if it is not.
// Returns the index sent, or null.
function clipprobe_show_phrase(target) {
    var node = target;
    while (node && !(node.classList && node.classList.contains("cp-phrase") && node.getAttribute && node.getAttribute("data-index") !== null)) {
        node = node.parentNode;
    }
    if (!node || !clipprobe_clickable(node)) {
        return null;
    }
    var index = node.getAttribute("data-index");
    var app = clipprobe_app();
    var box = app.querySelector("#clipprobe_phrase_index textarea") || app.querySelector("#clipprobe_phrase_index input");
    var button = app.querySelector("#clipprobe_show_heatmap");
    if (!box || !button) {
        return null;
    }
    box.value = index;
    var event = new Event("input", {bubbles: true});
    Object.defineProperty(event, "target", {value: box});
    box.dispatchEvent(event);
    button.click();
    clipprobe_mark_selected(index);
    clipprobe_bring_into_view(app.querySelector("#clipprobe_heatmap_view"), "nearest");
    return index;
}

function clipprobe_on_click(event) {
    clipprobe_show_phrase(event.target);
}

function clipprobe_is_chip(node) {
    return !!(node && node.nodeType === 1 && node.classList && node.classList.contains("cp-removed"));
}

function clipprobe_copied_text(node) {
    if (!node) {
        return "";
    }
    if (node.nodeType === 3) {
        return node.nodeValue || "";
    }
    var out = "";
    var gap = ""; // whitespace-only text waiting: dropped between two chips
    var chipBefore = false;
    Array.from(node.childNodes || []).forEach(function(kid) {
        if (kid.nodeType === 3 && !(kid.nodeValue || "").trim()) {
            gap += kid.nodeValue || "";
            return;
        }
        var chip = clipprobe_is_chip(kid);
        out += chip && chipBefore ? ", " : gap;
        gap = "";
        out += clipprobe_copied_text(kid);
        chipBefore = chip;
    });
    return out + gap;
}

function clipprobe_on_copy(event) {
    var selection = typeof window !== "undefined" && window.getSelection ? window.getSelection() : null;
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) {
        return;
    }
    var fragment = selection.getRangeAt(0).cloneContents();
    if (!fragment.querySelector || !fragment.querySelector(".cp-removed") || !event.clipboardData) {
        return;
    }
    event.clipboardData.setData("text/plain", clipprobe_copied_text(fragment));
    event.preventDefault();
}

if (typeof document !== "undefined" && typeof document.addEventListener === "function") {
    document.addEventListener("copy", clipprobe_on_copy);
    document.addEventListener("click", clipprobe_on_click);
}
