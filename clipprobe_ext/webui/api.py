"""ClipProbe's HTTP API, next to the WebUI's ``/sdapi/v1/*``: every route is here.

Public API: ``on_app_started(demo, app) -> None`` (pass it to the WebUI's
``on_app_started``) registers, once each:

- ``GET /clipprobe/v1/models`` -> ``{"models": [...], "default": str,
  "webui_clip_available": bool, "available_locally": {model: bool}}``
  (``webui_clip_available``: an interrogator whose CLIP is loaded or downloaded and did
  not just fail to load; ``available_locally``: usable without network).
  ``"fits": {model: {"fit": {"state": "own" | "calibrated" | "uncalibrated", "source",
  "pictures", "date"} | null, "why": str | null}}``: the fit in force per model, null
  (and why) where it cannot be known without loading the model (``fit_view``).
- ``POST /clipprobe/v1/calibrate`` (``CalibrateRequest``: ``folders``, ``model``,
  ``dry_run``, ``recursive``, ``limit``) -> ``report.calibration.calibration_data(run)``
  plus ``"fit_state"`` (the model's state afterwards).  Folders only inside the WebUI's
  output folders (``folders.api_folder``: resolved, links followed; anything else is
  refused before any work); a refusal (``CalibrationRefused``) is a 400 and saves nothing.
- ``POST /clipprobe/v1/analyze`` (``AnalyzeRequest``) -> ``report.data.report_data(report)``.
  Heatmaps, computed in the same hold of the model, as numbers unless pictures are asked
  for: ``"heatmaps": true`` adds ``"heatmaps"``, per image the maps' data (each phrase's
  grid as nested lists of numbers in [0, 1], its score, the crop box CLIP saw);
  ``"heatmap_images": true`` adds each phrase's ``overlay_png`` and ``"contact_sheet":
  true`` the image's ``contact_sheet_png`` (base64 PNGs; either one implies the maps).
- ``POST /clipprobe/v1/regenerate`` (``RegenerateRequest``) -> the plan, its warnings, the
  comparison (``report.comparison.comparison_data``), the new picture's infotext and the
  picture as base64 PNG (``"send_image": false`` leaves it out); ``"seeds": N`` (1-8)
  also generates both prompts with the N seeds from the picture's own and adds
  ``"seeds"``: per phrase the mean paired change of presence, its spread, 95 % interval
  and the seeds that kept it (``report.bring_in.seeds_data``).
- ``POST /clipprobe/v1/bring-in`` (``BringInRequest``) -> the variants that try to bring
  ``phrases`` into the picture, generated with its own seed and settings: each one's
  prompt, picture (base64 PNG) and numbers, the best one and the rule that chose it
  (``report.bring_in.bring_in_data``); nothing is sent anywhere else.

``image`` is base64 or a ``data:image/...;base64,`` URL and nothing else
(``images.decode_base64``): a string that looks like a file path or URL is rejected as
invalid base64, never opened.  The prompt, the negative prompt and a WebUI grid's pictures
come from ``clipprobe_ext.inputs.resolve``: without ``prompt`` the prompt is read from the
image's generation parameters, and with it the negative prompt stored there; a grid is
analysed as its pictures (``image 1``, ...), and the report's notes say so.  ``model``
must be one of ``GET /models`` (an API caller cannot make the server load arbitrary
folders).  The request models' bounds and help come from ``clipprobe_ext.options.OPTIONS``
(threshold and tolerance as fractions: 0.01 is 1 %).

Errors (``error_response``): invalid fields -> 422 (FastAPI's validation body);
``PromptError``/``ImageError``/bad options, and a ``model`` the server does not offer
(``UnknownModel``) -> 400; ``ModelError`` (model missing, offline, out of memory, unloaded
mid-run: the server cannot serve the request now) -> 503; both as ``{"error":
"<ErrorClass>", "detail": message}``.

Auth (``auth_dependencies``) mirrors ``Api.auth`` in ``modules/api/api.py`` of 1.10: when
``--api-auth user:pass,user2:pass2`` is set (read when the routes are registered, as the
WebUI does), every route requires HTTP Basic credentials, compared with
``secrets.compare_digest``; otherwise 401 with ``WWW-Authenticate: Basic``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from secrets import compare_digest
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import VERSION as PYDANTIC_VERSION
from pydantic import BaseModel, Field, conlist, constr

from clipprobe_ext.analysis.seeds import MAX_SEEDS
from clipprobe_ext.errors import ClipProbeError, ModelError
from clipprobe_ext.images import decode_base64
from clipprobe_ext.inputs import Resolved, resolve
from clipprobe_ext.options import MAX_PROMPT_CHARS, OPTIONS
from clipprobe_ext.report.data import report_data
from clipprobe_ext.webui import (
    fit_view,
    folders,
    host,
    model_source,
    regenerate,
    session,
    settings,
)
from clipprobe_ext.webui.regenerate.plan import prompt_to_regenerate

PREFIX = "/clipprobe/v1"
MAX_IMAGE_CHARS = 64 * 1024 * 1024  # base64 text of a ~48 MB file

# A1111 1.10 runs pydantic 1 (fastapi 0.94), Forge pydantic 2 (fastapi 0.104): the models
# below are written for both; only conlist's bounds and the config are spelled differently.
PYDANTIC_V2 = int(PYDANTIC_VERSION.split(".", 1)[0]) >= 2


def _conlist(item_type: Any, min_items: int, max_items: int) -> Any:
    if PYDANTIC_V2:
        return conlist(item_type, min_length=min_items, max_length=max_items)
    return conlist(item_type, min_items=min_items, max_items=max_items)


_SYNONYM_LIMITS = OPTIONS["synonyms"].limits
SynonymGroup = _conlist(
    constr(min_length=1, max_length=_SYNONYM_LIMITS["max_chars"]),
    _SYNONYM_LIMITS["min_size"],
    _SYNONYM_LIMITS["max_size"],
)
SynonymGroups = _conlist(SynonymGroup, 0, _SYNONYM_LIMITS["max_groups"])
Region = _conlist(float, 2, 4)


def _setting_field(name: str) -> Any:
    """An optional request field whose bounds and help come from ``OPTIONS[name]``."""
    keywords = OPTIONS[name].api_field()
    keywords["description"] = f"{keywords['description']}; default: Settings"
    return Field(None, **keywords)


def _plain_field(name: str) -> Any:
    spec = OPTIONS[name]
    return Field(spec.default, description=spec.help)


def _image_field() -> Any:
    return Field(..., min_length=1, max_length=MAX_IMAGE_CHARS, description="base64 or data URL")


class _Strict(BaseModel):
    """Unknown fields are refused (422), in pydantic 1 and 2."""

    if PYDANTIC_V2:
        model_config = {"extra": "forbid"}
    else:

        class Config:
            extra = "forbid"


class AnalyzeRequest(_Strict):
    image: str = _image_field()
    prompt: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="default: read from the image"
    )
    model: str | None = Field(None, description="one of GET /clipprobe/v1/models")
    rounds: int | None = _setting_field("rounds")
    threshold: float | None = _setting_field("threshold")
    tolerance: float | None = _setting_field("tolerance")
    synonyms: SynonymGroups = Field(  # type: ignore[valid-type]
        default_factory=list, description=OPTIONS["synonyms"].help
    )
    granularity: Literal["phrase", "word"] = _plain_field("granularity")
    contribution: bool = _plain_field("contribution")
    prune: bool = _plain_field("prune")
    negative: str | None = Field(
        None,
        max_length=MAX_PROMPT_CHARS,
        description="negative prompt checked against the picture; default: the image's",
    )
    heatmaps: bool = Field(
        False,
        description="also return, per image, each measurable phrase's map as numbers "
        "(its grid, score and the crop box CLIP saw)",
    )
    heatmap_images: bool = Field(
        False, description="add each phrase's overlay as a base64 PNG (implies heatmaps)"
    )
    contact_sheet: bool = Field(
        False, description="add each image's contact sheet as a base64 PNG (implies heatmaps)"
    )
    region: Region | None = Field(  # type: ignore[valid-type]
        None,
        description="a point [x, y] or a box [x0, y0, x1, y1] in pixels: rank the phrases by "
        "how much of their map falls there (implies heatmaps)",
    )


class RegenerateRequest(_Strict):
    image: str = _image_field()
    prompt: str | None = Field(
        None,
        max_length=MAX_PROMPT_CHARS,
        description="the pruned prompt; default: ClipProbe's suggestion for the picture",
    )
    infotext: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="default: read from the image"
    )
    model: str | None = Field(None, description="CLIP for the measurements; GET /models")
    allow_txt2img: bool = False
    use_original_checkpoint: bool = True
    send_image: bool = True
    seeds: int = Field(
        1, ge=1, le=MAX_SEEDS, description="compare both prompts over this many seeds"
    )


class BringInRequest(_Strict):
    image: str = _image_field()
    phrases: _conlist(constr(min_length=1, max_length=MAX_PROMPT_CHARS), 1, 32) = Field(  # type: ignore[valid-type]
        ..., description="the phrases to bring in, as the analysis lists them"
    )
    prompt: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="the analysed prompt; default: the image's"
    )
    infotext: str | None = Field(
        None, max_length=MAX_PROMPT_CHARS, description="default: read from the image"
    )
    model: str | None = Field(None, description="CLIP for the measurements; GET /models")
    allow_txt2img: bool = False
    use_original_checkpoint: bool = True


class CalibrateRequest(_Strict):
    folders: _conlist(  # type: ignore[valid-type]
        constr(min_length=1, max_length=4096), 1, 64
    ) = Field(..., description="folders inside the WebUI's output folders")
    model: str | None = Field(None, description="one of GET /clipprobe/v1/models")
    dry_run: bool = Field(False, description="fit and report, save nothing")
    recursive: bool = Field(True, description="include subfolders")
    limit: int | None = Field(None, ge=1, description="only the newest N files")


# -- shared request and response helpers ---------------------------------------------------------


class UnknownModel(ClipProbeError):
    """A model name the server does not offer (400, reported as a ModelError)."""


def chosen_model(name: str | None) -> str:
    """The request's model (default: Settings'), which must be one the server offers."""
    model = name or settings.default_model()
    if model not in model_source.list_models():
        raise UnknownModel(
            f"Unknown model '{model}'; GET {PREFIX}/models lists the models this server offers."
        )
    return model


def error_response(exc: ClipProbeError) -> JSONResponse:
    if isinstance(exc, UnknownModel):
        return JSONResponse(status_code=400, content={"error": "ModelError", "detail": str(exc)})
    if isinstance(exc, ModelError):  # ModelUnavailable too: the public name is ModelError
        return JSONResponse(status_code=503, content={"error": "ModelError", "detail": str(exc)})
    return JSONResponse(status_code=400, content={"error": type(exc).__name__, "detail": str(exc)})


def resolve_image(image: str, prompt: str | None = None, negative: str | None = None) -> Resolved:
    """A request's ``image`` (base64 or a data URL) with its prompt and negative prompt."""
    return resolve(decode_base64(image, "'image'"), prompt, negative, ask="send 'prompt'")


def png_base64(image: Any, infotext: str | None = None) -> str:
    """The picture as base64 PNG, its generation parameters in the ``parameters`` chunk."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if infotext:
        info.add_text("parameters", infotext)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def auth_dependencies() -> list[Any]:
    api_auth = host.cmd_opt("api_auth")
    if not api_auth:
        return []
    credentials: dict[str, str] = {}
    for pair in api_auth.split(","):
        user, _, password = pair.strip().partition(":")
        credentials[user] = password

    def auth(given: HTTPBasicCredentials = Depends(HTTPBasic())) -> bool:  # noqa: B008
        if given.username in credentials and compare_digest(
            given.password, credentials[given.username]
        ):
            return True
        raise HTTPException(
            status_code=401,
            detail="Incorrect username or password",
            headers={"WWW-Authenticate": "Basic"},
        )

    return [Depends(auth)]


# -- routes ------------------------------------------------------------------------------------------


def on_app_started(demo: Any, app: FastAPI) -> None:
    dependencies = auth_dependencies()
    routes = {
        ("GET", f"{PREFIX}/models"): models_endpoint,
        ("POST", f"{PREFIX}/analyze"): analyze_endpoint,
        ("POST", f"{PREFIX}/regenerate"): regenerate_endpoint,
        ("POST", f"{PREFIX}/bring-in"): bring_in_endpoint,
        ("POST", f"{PREFIX}/calibrate"): calibrate_endpoint,
    }
    existing = {
        (method, getattr(route, "path", None))
        for route in app.router.routes
        for method in (getattr(route, "methods", None) or ())
    }
    for (method, path), endpoint in routes.items():
        if (method, path) not in existing:
            app.add_api_route(path, endpoint, methods=[method], dependencies=dependencies)


def models_endpoint() -> dict[str, Any]:
    models = model_source.list_models()
    return {
        "models": models,
        "default": settings.default_model(),
        "webui_clip_available": model_source.webui_clip_available(),
        "available_locally": model_source.models_on_disk(),
        "fits": fit_view.fits(models),
    }


def calibrate_endpoint(request: CalibrateRequest) -> Any:
    """Calibrate a model on folders the WebUI writes to; the calibration as data."""
    from clipprobe_ext.audit.options import AuditOptions
    from clipprobe_ext.report.calibration import calibration_data
    from clipprobe_ext.webui.audit_tab import calibrate

    try:
        model = chosen_model(request.model)
        paths = [folders.api_folder(path) for path in request.folders]
        options = AuditOptions(recursive=request.recursive, limit=request.limit)
        run = calibrate(paths, options, model, save=not request.dry_run)
    except ClipProbeError as exc:
        return error_response(exc)
    data = calibration_data(run)
    data["fit_state"] = fit_view.model_fit(model).to_dict()["fit"]
    return data


def analyze_endpoint(request: AnalyzeRequest) -> Any:
    try:
        model = chosen_model(request.model)
        found = resolve_image(request.image, request.prompt, request.negative)
        options = settings.probe_options(
            rounds=request.rounds,
            threshold=request.threshold,
            tolerance=request.tolerance,
            synonyms=[list(group) for group in request.synonyms],
            granularity=request.granularity,
            contribution=request.contribution,
            prune=request.prune,
        )
        pictures = request.heatmap_images, request.contact_sheet
        wanted = request.heatmaps or any(pictures) or request.region is not None
        if request.region is not None and len(request.region) not in (2, 4):
            raise ClipProbeError("'region' is a point [x, y] or a box [x0, y0, x1, y1].")
        report, maps = session.analyze(
            found.pictures,
            found.prompt,
            options,
            model,
            after=heatmaps_after(found.pictures, *pictures, request.region) if wanted else None,
            labels=found.labels,
            negative=found.negative,
        )
        report.notes.extend(found.notes)
    except ClipProbeError as exc:
        return error_response(exc)
    data = report_data(report)
    if maps is not None:
        data["heatmaps"] = maps
    return data


def heatmaps_after(
    pictures: Sequence[Any], overlays: bool, sheet: bool, region: Sequence[float] | None = None
) -> session.After:
    """``after`` for ``session.analyze``: per picture the maps as numbers
    (``heatmaps_data``), base64 PNG overlays and the contact sheet when asked for, and the
    phrases ranked in ``region``; computed while the model is still on its device."""
    from clipprobe_ext.heatmaps.cli_output import heatmaps_json, report_heatmaps

    def after(encoder: Any, report: Any, progress: Any) -> list[dict[str, Any]]:
        all_maps = report_heatmaps(encoder, report, pictures, progress=progress)
        return [
            heatmaps_json(picture, maps, overlays, sheet, region=region)
            for picture, maps in zip(pictures, all_maps)
        ]

    return after


def regenerate_endpoint(request: RegenerateRequest) -> Any:
    """Regenerate the picture with the request's prompt (or ClipProbe's suggestion) and
    compare; the suggestion's analysis is also what the comparison is against."""
    from clipprobe_ext.report.bring_in import seeds_data
    from clipprobe_ext.report.comparison import comparison_data

    try:
        model = chosen_model(request.model)
        data = decode_base64(request.image, "'image'")
        image, text, found = regenerate.original_picture(
            data, request.infotext, ask="send 'infotext'"
        )
        report = None
        if not (request.prompt and request.prompt.strip()):
            report, _ = session.analyze(
                found.pictures, found.prompt, settings.probe_options(), model, labels=found.labels
            )
        prompt = prompt_to_regenerate(request.prompt, report, found.prompt)
        result, comparison = regenerate.regenerate_and_compare(
            image,
            prompt,
            infotext=text,
            model_name=model,
            allow_txt2img=request.allow_txt2img,
            use_original_checkpoint=request.use_original_checkpoint,
            report=report,
            seeds=request.seeds,
        )
    except ClipProbeError as exc:
        return error_response(exc)
    confirmed = result.seeds
    return {
        "seeds": None if confirmed is None else seeds_data(confirmed.comparisons, confirmed.seeds),
        "prompt": prompt,
        "plan": result.plan.to_dict(),
        "warnings": result.plan.warnings,
        "comparison": comparison_data(comparison),
        "infotext": result.infotext,
        "image": png_base64(result.image, result.infotext) if request.send_image else None,
    }


def bring_in_endpoint(request: BringInRequest) -> Any:
    """Generate the variants that try to bring ``phrases`` in, and measure each."""
    from clipprobe_ext.report.bring_in import bring_in_data

    try:
        model = chosen_model(request.model)
        data = decode_base64(request.image, "'image'")
        image, text, _ = regenerate.original_picture(data, request.infotext, ask="send 'infotext'")
        run = regenerate.bring_in(
            image,
            list(request.phrases),
            prompt=request.prompt,
            infotext=text,
            model_name=model,
            allow_txt2img=request.allow_txt2img,
            use_original_checkpoint=request.use_original_checkpoint,
        )
    except ClipProbeError as exc:
        return error_response(exc)
    pictures = [png_base64(r.image, info) for r, info in zip(run.result.results, run.infotexts)]
    out = bring_in_data(run.result, pictures)
    out["plan"] = run.plan.to_dict()
    out["warnings"] = run.plan.warnings
    return out
