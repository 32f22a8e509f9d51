// node --test tests/js: javascript/clipprobe.js run in a vm context with a tiny fake DOM.
"use strict";

const test = require("node:test");
const assert = require("node:assert");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const SOURCE = fs.readFileSync(path.join(__dirname, "..", "..", "javascript", "clipprobe.js"), "utf8");

class FakeElement {
    constructor(tag, {id = "", text = "", classes = []} = {}) {
        this.tagName = tag.toUpperCase();
        this.id = id;
        this.textContent = text;
        this.classList = new Set(classes);
        this.children = [];
        this.parent = null;
        this.value = "";
        this.events = [];
        this.clicks = 0;
        this.attributes = {};
        this.classList.contains = (name) => this.classList.has(name);
        this.classList.remove = (name) => this.classList.delete(name);
        this.scrolls = [];
    }
    getAttribute(name) {
        return name in this.attributes ? this.attributes[name] : null;
    }
    append(...kids) {
        for (const k of kids) {
            k.parent = this;
            this.children.push(k);
        }
        return this;
    }
    get parentNode() {
        return this.parent;
    }
    descendants() {
        return this.children.flatMap((c) => [c, ...c.descendants()]);
    }
    // Enough of querySelector for the selectors the script uses:
    // "#id", "tag", ".class", "#id tag" (descendant).
    matches(simple) {
        if (simple.startsWith("#")) return this.id === simple.slice(1);
        if (simple.startsWith(".")) return this.classList.has(simple.slice(1));
        return this.tagName === simple.toUpperCase();
    }
    querySelectorAll(selector) {
        const parts = selector.trim().split(/\s+/);
        let scope = [this];
        for (const part of parts) {
            scope = scope.flatMap((el) => el.descendants().filter((d) => d.matches(part)));
        }
        return [...new Set(scope)];
    }
    querySelector(selector) {
        return this.querySelectorAll(selector)[0] || null;
    }
    dispatchEvent(event) {
        this.events.push(event);
        return true;
    }
    click() {
        this.clicks += 1;
    }
    scrollIntoView(options) {
        this.scrolls.push(options);
    }
}

function page({withTab = true} = {}) {
    const root = new FakeElement("div", {id: "root"});
    const labels = ["txt2img", "img2img", "Extras", "PNG Info"].concat(withTab ? ["ClipProbe"] : []).concat(["Settings"]);
    const nav = new FakeElement("div", {classes: ["tab-nav"]});
    nav.append(...labels.map((l) => new FakeElement("button", {text: ` ${l} `})));
    const tabs = new FakeElement("div", {id: "tabs"}).append(nav);
    const ids = ["txt2img", "img2img", "extras", "pnginfo"].concat(withTab ? ["clipprobe"] : []).concat(["settings"]);
    tabs.append(...ids.map((id) => new FakeElement("div", {id: `tab_${id}`, classes: ["tabitem"]})));
    const t2i = new FakeElement("div", {id: "txt2img_prompt"}).append(new FakeElement("textarea"));
    const i2i = new FakeElement("div", {id: "img2img_prompt"}).append(new FakeElement("textarea"));
    const t2iNeg = new FakeElement("div", {id: "txt2img_neg_prompt"}).append(new FakeElement("textarea"));
    t2iNeg.querySelector("textarea").value = "blurry";
    const resultRow = new FakeElement("div", {id: "clipprobe_result_row", classes: ["progress-container"]});
    resultRow.append(new FakeElement("div", {id: "clipprobe_result"}));
    root.append(tabs, t2i, i2i, t2iNeg, resultRow);
    return root;
}

function load(root, extra = {}) {
    const switched = [];
    class Event {
        constructor(type, init = {}) {
            this.type = type;
            this.bubbles = !!init.bubbles;
        }
    }
    const context = {
        Event,
        gradioApp: () => root,
        switch_to_txt2img: () => switched.push("txt2img"),
        switch_to_img2img: () => switched.push("img2img"),
        document: root,
        console,
        ...extra,
    };
    vm.createContext(context);
    vm.runInContext(SOURCE, context);
    return {context, switched};
}

test("send to txt2img fills only its prompt, fires input, switches tab", () => {
    const root = page();
    const {context, switched} = load(root);
    const result = context.clipprobe_send_to_txt2img("a girl, rain");
    const textarea = root.querySelector("#txt2img_prompt textarea");
    assert.strictEqual(textarea.value, "a girl, rain");
    assert.strictEqual(textarea.events.length, 1);
    assert.strictEqual(textarea.events[0].type, "input");
    assert.strictEqual(textarea.events[0].bubbles, true);
    assert.strictEqual(textarea.events[0].target, textarea);
    assert.deepStrictEqual(switched, ["txt2img"]);
    assert.strictEqual(root.querySelector("#img2img_prompt textarea").value, "");
    assert.strictEqual(root.querySelector("#txt2img_neg_prompt textarea").value, "blurry");
    assert.strictEqual(result.length, 0);
});

test("send to img2img fills the img2img prompt and switches there", () => {
    const root = page();
    const {context, switched} = load(root);
    context.clipprobe_send_to_img2img("a cat <lora:x:1>");
    assert.strictEqual(root.querySelector("#img2img_prompt textarea").value, "a cat <lora:x:1>");
    assert.strictEqual(root.querySelector("#txt2img_prompt textarea").value, "");
    assert.deepStrictEqual(switched, ["img2img"]);
});

test("an empty pruned prompt changes nothing", () => {
    const root = page();
    const {context, switched} = load(root);
    root.querySelector("#txt2img_prompt textarea").value = "typed";
    context.clipprobe_send_to_txt2img("   ");
    context.clipprobe_send_to_txt2img(null);
    assert.strictEqual(root.querySelector("#txt2img_prompt textarea").value, "typed");
    assert.deepStrictEqual(switched, []);
});

test("switch_to_clipprobe clicks the ClipProbe tab button and passes arguments on", () => {
    const root = page();
    const {context} = load(root);
    const out = context.switch_to_clipprobe("img", "text");
    const buttons = root.querySelector("#tabs").querySelector(".tab-nav").querySelectorAll("button");
    assert.deepStrictEqual(buttons.map((b) => b.clicks), [0, 0, 0, 0, 1, 0]);
    assert.deepStrictEqual(Array.from(out), ["img", "text"]);
});

test("switch_to_clipprobe finds the tab by position when labels differ (translations)", () => {
    const root = page();
    const nav = root.querySelector("#tabs").querySelector(".tab-nav");
    nav.children[4].textContent = "ClipProbe (übersetzt)";
    const {context} = load(root);
    context.switch_to_clipprobe();
    assert.deepStrictEqual(nav.children.map((b) => b.clicks), [0, 0, 0, 0, 1, 0]);
});

test("without a ClipProbe tab nothing is clicked", () => {
    const root = page({withTab: false});
    const {context} = load(root);
    context.switch_to_clipprobe();
    const nav = root.querySelector("#tabs").querySelector(".tab-nav");
    assert.ok(nav.children.every((b) => b.clicks === 0));
});

test("recalculate_prompts_clipprobe passes its arguments on", () => {
    const {context} = load(page());
    assert.deepStrictEqual(Array.from(context.recalculate_prompts_clipprobe(1, 2)), [1, 2]);
});

// The WebUI's own helpers of javascript/progressbar.js (1.10): randomId() and a recorder
// for requestProgress(id_task, progressbarContainer, gallery, atEnd, onProgress, timeout).
function webuiProgress() {
    const calls = [];
    let next = 0;
    return {
        calls,
        randomId: () => `task(id${++next})`,
        requestProgress: (...args) => calls.push(args),
    };
}

test("clipprobe_submit makes a task id, starts the progress bar, passes the id first", () => {
    const root = page();
    const progress = webuiProgress();
    const {context} = load(root, {randomId: progress.randomId, requestProgress: progress.requestProgress});
    const args = ["", "image", "a girl, rain", "", 4, 0.0, 0.02, "phrases", "model"];
    const out = Array.from(context.clipprobe_submit(...args));
    assert.deepStrictEqual(out, ["task(id1)", ...args.slice(1)]);
    assert.strictEqual(progress.calls.length, 1);
    const [id, container, gallery, atEnd] = progress.calls[0];
    assert.strictEqual(id, "task(id1)");
    assert.strictEqual(container, root.querySelector("#clipprobe_result"));
    assert.ok(container.parentNode.classList.has("progress-container"));
    assert.strictEqual(gallery, null);
    assert.strictEqual(typeof atEnd, "function");
    atEnd();
    const again = Array.from(context.clipprobe_submit(...args));
    assert.strictEqual(again[0], "task(id2)"); // a fresh id per click
    assert.strictEqual(progress.calls[1][0], "task(id2)");
});

test("clipprobe_submit without the WebUI's progress helpers still passes a task id", () => {
    const root = page();
    const {context} = load(root);
    const out = Array.from(context.clipprobe_submit("", "image", "prompt"));
    assert.match(out[0], /^task\(clipprobe-[a-z0-9]+\)$/);
    assert.deepStrictEqual(out.slice(1), ["image", "prompt"]);
});

test("clipprobe_submit survives a failing requestProgress and a missing result box", () => {
    const progress = webuiProgress();
    const failing = load(page(), {
        randomId: progress.randomId,
        requestProgress: () => {
            throw new Error("boom");
        },
        console: {error: () => {}},
    });
    assert.strictEqual(Array.from(failing.context.clipprobe_submit("", "x"))[0], "task(id1)");
    const root = new FakeElement("div", {id: "root"});
    const bare = load(root, {randomId: progress.randomId, requestProgress: progress.requestProgress});
    assert.deepStrictEqual(Array.from(bare.context.clipprobe_submit("", "x")), ["task(id2)", "x"]);
    assert.strictEqual(progress.calls.length, 0);
});

// Nodes as the DOM gives them to the copy handler: text nodes and elements with classList.
function text(value) {
    return {nodeType: 3, nodeValue: value};
}
function el(classes, ...childNodes) {
    return {nodeType: 1, classList: {contains: (c) => classes.includes(c)}, childNodes};
}

test("removed-phrase chips are copied with separators, other text as it is", () => {
    const {context} = load(page());
    const removed = el(
        ["cp-section"],
        el(["p"], text("Removed: "), el(["cp-removed"], text("hokusai")), el(["cp-removed"], text("girl")),
            text(" "), el(["cp-removed"], text("by red umbrella"))),
        text("\n"),
        el(["cp-keeps"], text("Similarity 0.21 → 0.20")),
    );
    assert.strictEqual(
        context.clipprobe_copied_text(removed),
        "Removed: hokusai, girl, by red umbrella\nSimilarity 0.21 → 0.20",
    );
    // one chip: nothing added
    assert.strictEqual(context.clipprobe_copied_text(el([], el(["cp-removed"], text("rain")))), "rain");
});

test("the copy listener puts the separated text on the clipboard only for chips", () => {
    const listeners = {};
    const root = page();
    root.addEventListener = (type, fn) => {
        listeners[type] = fn;
    };
    let fragment = el([], el(["cp-removed"], text("a")), el(["cp-removed"], text("b")));
    fragment.querySelector = (sel) => (sel === ".cp-removed" ? fragment.childNodes[0] : null);
    const selection = {rangeCount: 1, isCollapsed: false, getRangeAt: () => ({cloneContents: () => fragment})};
    load(root, {window: {getSelection: () => selection}});
    const copied = {};
    let prevented = false;
    const event = {
        clipboardData: {setData: (type, value) => (copied[type] = value)},
        preventDefault: () => (prevented = true),
    };
    listeners.copy(event);
    assert.deepStrictEqual(copied, {"text/plain": "a, b"});
    assert.strictEqual(prevented, true);
    fragment = el([], text("plain text"));
    fragment.querySelector = () => null;
    prevented = false;
    listeners.copy(event);
    assert.strictEqual(prevented, false); // the browser copies it itself
});

test("the regenerate, audit and calibrate buttons get their own task ids and progress bars", () => {
    const root = page();
    root.append(
        new FakeElement("div", {classes: ["progress-container"]}).append(new FakeElement("div", {id: "clipprobe_regenerate_result"})),
        new FakeElement("div", {classes: ["progress-container"]}).append(new FakeElement("div", {id: "clipprobe_audit_result"})),
        new FakeElement("div", {classes: ["progress-container"]}).append(new FakeElement("div", {id: "clipprobe_calibrate_result"})),
    );
    const progress = webuiProgress();
    const {context} = load(root, {randomId: progress.randomId, requestProgress: progress.requestProgress});
    const regen = Array.from(context.clipprobe_submit_regenerate("", "image", "a girl", false, "model"));
    assert.deepStrictEqual(regen, ["task(id1)", "image", "a girl", false, "model"]);
    assert.strictEqual(progress.calls[0][1], root.querySelector("#clipprobe_regenerate_result"));
    const audit = Array.from(context.clipprobe_submit_audit("", "/outputs", true, 0, "model"));
    assert.deepStrictEqual(audit, ["task(id2)", "/outputs", true, 0, "model"]);
    assert.strictEqual(progress.calls[1][1], root.querySelector("#clipprobe_audit_result"));
    const calibrate = Array.from(context.clipprobe_submit_calibrate("", "/outputs", true, 0, "model"));
    assert.deepStrictEqual(calibrate, ["task(id3)", "/outputs", true, 0, "model"]);
    assert.strictEqual(progress.calls[2][1], root.querySelector("#clipprobe_calibrate_result"));
});

function heatmapPage() {
    const root = page();
    const result = root.querySelector("#clipprobe_result");
    const prompt = new FakeElement("div", {classes: ["cp-prompt"]});
    const phrase = new FakeElement("span", {classes: ["cp-phrase", "cp-keep"]});
    phrase.attributes["data-index"] = "3";
    const inner = new FakeElement("b", {text: "red"});
    phrase.append(inner);
    const legend = new FakeElement("span", {classes: ["cp-phrase", "cp-keep"]}); // no index
    prompt.append(phrase, legend);
    result.append(prompt);
    const box = new FakeElement("div", {id: "clipprobe_phrase_index"}).append(new FakeElement("textarea"));
    const button = new FakeElement("button", {id: "clipprobe_show_heatmap"});
    root.append(box, button);
    const outside = new FakeElement("span", {classes: ["cp-phrase"]});
    outside.attributes["data-index"] = "1";
    root.append(outside);
    return {root, phrase, inner, legend, outside, button, textarea: box.querySelector("textarea")};
}

test("a click on a phrase sends its index and clicks the hidden heatmap button", () => {
    const p = heatmapPage();
    const {context} = load(p.root);
    assert.strictEqual(context.clipprobe_show_phrase(p.inner), "3"); // a child of the span
    assert.strictEqual(p.textarea.value, "3");
    assert.strictEqual(p.textarea.events.length, 1);
    assert.strictEqual(p.textarea.events[0].type, "input");
    assert.strictEqual(p.textarea.events[0].target, p.textarea);
    assert.strictEqual(p.button.clicks, 1);
    context.clipprobe_on_click({target: p.phrase});
    assert.strictEqual(p.button.clicks, 2);
});

test("clicks elsewhere send nothing", () => {
    const p = heatmapPage();
    const {context} = load(p.root);
    assert.strictEqual(context.clipprobe_show_phrase(p.legend), null); // legend: no index
    assert.strictEqual(context.clipprobe_show_phrase(p.outside), null); // not in the result
    assert.strictEqual(context.clipprobe_show_phrase(p.root), null);
    assert.strictEqual(context.clipprobe_show_phrase(null), null);
    assert.strictEqual(p.button.clicks, 0);
    assert.strictEqual(p.textarea.value, "");
});

// Objects made inside the script's context, as plain data (other prototypes otherwise).
function plain(value) {
    return JSON.parse(JSON.stringify(value));
}

// The tab as the results panel lays it out: the answer (#clipprobe_result), the coloured
// prompt (#clipprobe_prompt_view) with the heatmap under it, the detail sections below.
function panelPage() {
    const p = heatmapPage();
    const view = new FakeElement("div", {id: "clipprobe_prompt_view"});
    const prompt = new FakeElement("div", {classes: ["cp-prompt"]});
    const phrases = ["0", "3", "5"].map((index) => {
        const span = new FakeElement("span", {classes: ["cp-phrase", "cp-keep"]});
        span.attributes["data-index"] = index;
        return span;
    });
    phrases[0].classList.add("cp-selected"); // the first phrase's map is shown at first
    prompt.append(...phrases);
    view.append(prompt);
    const heatmap = new FakeElement("div", {id: "clipprobe_heatmap_view"});
    const details = new FakeElement("div", {id: "clipprobe_verdicts_view"});
    const row = new FakeElement("span", {classes: ["cp-phrase", "cp-prune"]});
    row.attributes["data-index"] = "5";
    details.append(row);
    p.root.append(view, heatmap, details);
    return {...p, view, phrases, heatmap, row};
}

test("a click in the coloured prompt shows that phrase's heatmap, on screen and marked", () => {
    const p = panelPage();
    const {context} = load(p.root);
    assert.strictEqual(context.clipprobe_show_phrase(p.phrases[2]), "5");
    assert.strictEqual(p.textarea.value, "5");
    assert.strictEqual(p.button.clicks, 1);
    // the heatmap under the prompt is scrolled into view as little as needed
    assert.deepStrictEqual(plain(p.heatmap.scrolls), [{block: "nearest", behavior: "smooth"}]);
    // only the clicked phrase wears the mark now
    assert.deepStrictEqual(p.phrases.map((s) => s.classList.has("cp-selected")), [false, false, true]);
    assert.strictEqual(p.row.classList.has("cp-selected"), false);
    // a chip of the answer with the same phrase counts as the same click
    context.clipprobe_show_phrase(p.phrase);
    assert.strictEqual(p.textarea.value, "3");
    assert.deepStrictEqual(p.phrases.map((s) => s.classList.has("cp-selected")), [false, true, false]);
    assert.strictEqual(p.phrase.classList.has("cp-selected"), true);
});

test("phrases in the detail sections do not move the heatmap", () => {
    const p = panelPage();
    const {context} = load(p.root);
    assert.strictEqual(context.clipprobe_show_phrase(p.row), null);
    assert.strictEqual(p.button.clicks, 0);
    assert.deepStrictEqual(p.heatmap.scrolls, []);
    assert.strictEqual(p.phrases[0].classList.has("cp-selected"), true); // unchanged
});

test("Regenerate brings its section on screen before the bar starts", () => {
    const p = panelPage();
    const section = new FakeElement("div", {id: "clipprobe_regenerate_section"});
    const row = new FakeElement("div", {classes: ["progress-container"]});
    row.append(new FakeElement("div", {id: "clipprobe_regenerate_result"}));
    section.append(row);
    p.root.append(section);
    const progress = webuiProgress();
    const {context} = load(p.root, {randomId: progress.randomId, requestProgress: progress.requestProgress});
    const out = Array.from(context.clipprobe_submit_regenerate("", "image", "a girl"));
    assert.strictEqual(out[0], "task(id1)");
    assert.deepStrictEqual(plain(section.scrolls), [{block: "start", behavior: "smooth"}]);
    assert.strictEqual(progress.calls[0][1], p.root.querySelector("#clipprobe_regenerate_result"));
});
