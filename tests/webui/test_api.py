"""The HTTP API through a real FastAPI TestClient (fastapi 0.94, httpx 0.24)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin

from clipprobe_ext.webui import api, model_source

PARAMETERS = (
    "a red cube, blue sky, studio lighting\n"
    "Negative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 64x48, Model: test"
)


def png_bytes(image: Image.Image, parameters: str | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if parameters is not None:
        info.add_text("parameters", parameters)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def make_client(webui) -> TestClient:
    app = FastAPI()
    webui.callbacks["app_started"].append(api.on_app_started)  # what callbacks.register does
    webui.fire_app_started(None, app)
    return TestClient(app)


@pytest.fixture()
def client(webui, interrogator) -> TestClient:
    return make_client(webui)


@pytest.fixture()
def image_b64(images) -> str:
    return b64(png_bytes(images[0]))


# -- models ------------------------------------------------------------------------------------


def test_models_lists_the_choices(client):
    response = client.get("/clipprobe/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["models"] == model_source.list_models()
    assert body["default"] == model_source.WEBUI_CLIP
    assert body["webui_clip_available"] is True
    # the interrogator's ViT-L-14.pt is downloaded; the hub models are not in this cache
    assert body["available_locally"] == {
        model_source.WEBUI_CLIP: True,
        "openai/clip-vit-base-patch32": False,
        "openai/clip-vit-large-patch14": False,
    }


def test_request_bounds_come_from_the_options_spec():
    from clipprobe_ext.options import OPTIONS

    schema = (
        api.AnalyzeRequest.model_json_schema() if api.PYDANTIC_V2 else api.AnalyzeRequest.schema()
    )
    for name in ("rounds", "threshold", "tolerance"):
        field = schema["properties"][name]
        if "anyOf" in field:  # pydantic 2: Optional[...] is anyOf [number, null]
            field = {**field, **field["anyOf"][0]}
        spec = OPTIONS[name]
        assert (field["minimum"], field["maximum"]) == (spec.minimum, spec.maximum), name
        assert spec.help in field["description"]


def test_routes_are_registered_once(webui):
    app = FastAPI()
    api.on_app_started(None, app)
    api.on_app_started(None, app)
    paths = [r.path for r in app.router.routes if r.path.startswith("/clipprobe")]
    assert sorted(paths) == [
        "/clipprobe/v1/analyze",
        "/clipprobe/v1/bring-in",
        "/clipprobe/v1/calibrate",
        "/clipprobe/v1/models",
        "/clipprobe/v1/regenerate",
    ]


# -- analyze -----------------------------------------------------------------------------------


def test_analyze_returns_the_report(client, image_b64, interrogator):
    response = client.post(
        "/clipprobe/v1/analyze",
        json={"image": image_b64, "prompt": "a red cube, blue sky, studio lighting", "rounds": 2},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prompt"] == "a red cube, blue sky, studio lighting"
    assert body["model_id"] == model_source.WEBUI_CLIP_ID
    assert [p["text"] for p in body["phrases"]] == ["a red cube", "blue sky", "studio lighting"]
    assert len(body["images"]) == 1
    assert len(body["images"][0]["ranking"]["rounds"]) == 2
    assert {v["verdict"] for v in body["verdicts"]} <= {"keep", "weak", "prune"}
    assert body["options"]["rounds"] == 2
    assert "send_clip_to_ram" in interrogator.calls


def test_analyze_accepts_a_data_url_and_all_options(client, images):
    url = "data:image/png;base64," + b64(png_bytes(images[1]))
    response = client.post(
        "/clipprobe/v1/analyze",
        json={
            "image": url,
            "prompt": "a girl with an umbrella, rain",
            "threshold": 0.05,
            "tolerance": 0.02,
            "synonyms": [["girl", "woman"], ["umbrella", "parasol"]],
            "granularity": "word",
            "contribution": False,
            "prune": False,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["options"]["granularity"] == "word"
    assert body["pruning"] is None
    assert body["images"][0]["contribution"] is None
    assert len(body["images"][0]["synonyms"]) == 2


def test_analyze_reads_the_prompt_from_the_image(client, images):
    data = png_bytes(images[0], PARAMETERS)
    response = client.post("/clipprobe/v1/analyze", json={"image": b64(data)})
    assert response.status_code == 200, response.text
    assert response.json()["prompt"] == "a red cube, blue sky, studio lighting"


def test_a_grid_is_analysed_as_its_pictures(client):
    from webui_grids import grid_infotext, noisy_picture, webui_grid

    pictures = [noisy_picture(seed=60 + i) for i in range(3)]
    text = grid_infotext("a red cube, blue sky", "blurry", *pictures[0].size)
    response = client.post(
        "/clipprobe/v1/analyze", json={"image": b64(png_bytes(webui_grid(pictures, 2), text))}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [im["label"] for im in body["images"]] == ["image 1", "image 2", "image 3"]
    assert body["prompt"] == "a red cube, blue sky"
    assert body["negative"]["negative_prompt"] == "blurry"
    assert any("WebUI grid of 3 images" in note for note in body["notes"])
    for picture, got in zip(pictures, body["images"]):  # each cell is its picture
        alone = client.post(
            "/clipprobe/v1/analyze",
            json={"image": b64(png_bytes(picture)), "prompt": "a red cube, blue sky"},
        ).json()
        want = alone["images"][0]["ranking"]["rounds"]
        assert [r["candidates"] for r in got["ranking"]["rounds"]] == [
            r["candidates"] for r in want
        ]
        for mine, theirs in zip(got["ranking"]["rounds"], want):
            np.testing.assert_allclose(mine["probabilities"], theirs["probabilities"], atol=1e-6)


def test_missing_prompt_without_parameters_is_400(client, image_b64):
    response = client.post("/clipprobe/v1/analyze", json={"image": image_b64})
    assert response.status_code == 400
    assert response.json()["error"] == "PromptError"
    assert "prompt" in response.json()["detail"]


def test_blank_prompt_counts_as_missing(client, image_b64):
    response = client.post("/clipprobe/v1/analyze", json={"image": image_b64, "prompt": "  "})
    assert response.status_code == 400
    assert response.json()["error"] == "PromptError"


@pytest.mark.parametrize(
    "image", ["not base64 at all!", "aGVsbG8", "%%%%", "data:image/png;base64,@@"]
)
def test_malformed_base64_is_400(client, image):
    response = client.post("/clipprobe/v1/analyze", json={"image": image, "prompt": "a cube"})
    assert response.status_code == 400
    assert response.json()["error"] == "ImageError"


def test_valid_base64_that_is_not_an_image_is_400(client):
    response = client.post(
        "/clipprobe/v1/analyze", json={"image": b64(b"hello world, no picture"), "prompt": "x"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "ImageError"


def test_a_file_path_is_never_opened(client, images, tmp_path, monkeypatch):
    # A real picture on the server's disk, named so the path is also valid base64.
    folder = tmp_path / "abc"
    folder.mkdir()
    path = folder / "ABCD"
    images[0].save(path, format="PNG")
    opened = []
    real_open = Image.open

    def spy(fp, *args, **kwargs):
        opened.append(fp)
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy)
    for candidate in (str(path), str(tmp_path / "abc" / "ABCD"), path.as_uri()):
        response = client.post("/clipprobe/v1/analyze", json={"image": candidate, "prompt": "x"})
        assert response.status_code == 400, candidate
        assert response.json()["error"] == "ImageError"
    assert not [fp for fp in opened if isinstance(fp, str) or hasattr(fp, "__fspath__")]


@pytest.mark.parametrize(
    "extra",
    [
        {"rounds": 1000},
        {"rounds": 0},
        {"threshold": 1.5},
        {"threshold": 0.6},  # the spec's maximum is 0.5 (50 %)
        {"tolerance": -0.1},
        {"granularity": "letter"},
        {"synonyms": [["only one"]]},
        {"synonyms": "girl | woman"},
        {"unexpected": True},
    ],
)
def test_out_of_range_values_are_422(client, image_b64, extra):
    response = client.post(
        "/clipprobe/v1/analyze", json={"image": image_b64, "prompt": "a cube", **extra}
    )
    assert response.status_code == 422, response.text


def test_missing_image_is_422(client):
    response = client.post("/clipprobe/v1/analyze", json={"prompt": "a cube"})
    assert response.status_code == 422


def test_unknown_model_is_400_and_not_loaded(client, image_b64, tmp_path):
    response = client.post(
        "/clipprobe/v1/analyze",
        json={"image": image_b64, "prompt": "a cube", "model": str(tmp_path)},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "ModelError"
    assert "Unknown model" in response.json()["detail"]


def test_missing_interrogator_is_503(webui, image_b64):
    webui.interrogator = None
    client = make_client(webui)
    response = client.post("/clipprobe/v1/analyze", json={"image": image_b64, "prompt": "a cube"})
    assert response.status_code == 503
    assert response.json() == {"error": "ModelError", "detail": model_source.NO_INTERROGATOR}
    assert client.get("/clipprobe/v1/models").json()["webui_clip_available"] is False


def test_configured_transformers_model_is_offered_and_used(webui, image_b64, tiny_hf_clip_dir):
    from clipprobe_ext.webui import settings

    settings.on_ui_settings()
    webui.opts.clipprobe_default_model = str(tiny_hf_clip_dir)
    client = make_client(webui)
    assert str(tiny_hf_clip_dir) in client.get("/clipprobe/v1/models").json()["models"]
    response = client.post(
        "/clipprobe/v1/analyze",
        json={"image": image_b64, "prompt": "a cube, a ball", "model": str(tiny_hf_clip_dir)},
    )
    assert response.status_code == 200, response.text
    assert response.json()["model_id"] == f"hf:{tiny_hf_clip_dir}"


# -- auth --------------------------------------------------------------------------------------


@pytest.fixture()
def auth_client(webui, interrogator) -> TestClient:
    webui.cmd_opts.api_auth = "alice:s3cret,bob:pa:ss"
    return make_client(webui)


def test_no_credentials_is_401_with_basic_challenge(auth_client, image_b64):
    for response in (
        auth_client.get("/clipprobe/v1/models"),
        auth_client.post("/clipprobe/v1/analyze", json={"image": image_b64, "prompt": "x"}),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Basic"


@pytest.mark.parametrize(
    "credentials", [("alice", "wrong"), ("mallory", "s3cret"), ("alice", ""), ("bob", "pa")]
)
def test_wrong_credentials_are_401(auth_client, credentials):
    response = auth_client.get("/clipprobe/v1/models", auth=credentials)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Basic"
    assert response.json()["detail"] == "Incorrect username or password"


def test_right_credentials_pass(auth_client, image_b64):
    assert auth_client.get("/clipprobe/v1/models", auth=("alice", "s3cret")).status_code == 200
    assert auth_client.get("/clipprobe/v1/models", auth=("bob", "pa:ss")).status_code == 200
    response = auth_client.post(
        "/clipprobe/v1/analyze",
        json={"image": image_b64, "prompt": "a red cube", "rounds": 1},
        auth=("alice", "s3cret"),
    )
    assert response.status_code == 200, response.text


def test_without_api_auth_no_credentials_needed(client):
    assert client.get("/clipprobe/v1/models").status_code == 200


# -- heatmaps and the regenerate route -------------------------------------------------------


def test_heatmaps_only_when_asked_and_as_the_engine_draws_them(
    webui, images, tiny_hf_clip_dir, hf_encoder
):
    from clipprobe_ext.heatmaps.compute import phrase_heatmaps

    client = make_client(webui)
    picture = images[0].resize((96, 48))
    body = {
        "image": b64(png_bytes(picture, PARAMETERS)),
        "model": str(tiny_hf_clip_dir),
        "rounds": 2,
    }
    webui.opts.data["clipprobe_default_model"] = str(tiny_hf_clip_dir)
    response = client.post("/clipprobe/v1/analyze", json=body)
    assert response.status_code == 200, response.text
    assert "heatmaps" not in response.json()
    response = client.post("/clipprobe/v1/analyze", json={**body, "heatmaps": True})
    assert response.status_code == 200, response.text
    [data] = response.json()["heatmaps"]
    phrases = ["a red cube", "blue sky", "studio lighting"]
    assert [p["phrase"] for p in data["phrases"]] == phrases
    expected = phrase_heatmaps(hf_encoder, picture, phrases)
    for got, want in zip(data["phrases"], expected):
        np.testing.assert_allclose(got["grid"], want.grid, atol=1e-3)
        assert got["score"] == pytest.approx(want.score, abs=1e-5)
        assert "overlay_png" not in got  # numbers only, unless pictures are asked for
    assert "contact_sheet_png" not in data
    assert data["crop_box"] == [24, 0, 72, 48] and data["note"]
    assert data["image_size"] == [96, 48]

    response = client.post(
        "/clipprobe/v1/analyze",
        json={**body, "heatmap_images": True, "contact_sheet": True},  # imply the maps
    )
    assert response.status_code == 200, response.text
    [data] = response.json()["heatmaps"]
    for got, want in zip(data["phrases"], expected):
        np.testing.assert_allclose(got["grid"], want.grid, atol=1e-3)
        overlay = Image.open(io.BytesIO(base64.b64decode(got["overlay_png"])))
        assert overlay.size == picture.size
    sheet = Image.open(io.BytesIO(base64.b64decode(data["contact_sheet_png"])))
    assert sheet.width > picture.width


def test_heatmap_pictures_only_on_request_and_what_they_cost(webui, images, tiny_hf_clip_dir):
    """One 256x256 picture, three phrases: the maps as numbers cost about 8 bytes per grid
    cell; each kind of picture is there only when asked for, and costs its PNGs."""
    import json

    settings_model = str(tiny_hf_clip_dir)
    webui.opts.data["clipprobe_default_model"] = settings_model
    client = make_client(webui)
    picture = images[0].resize((256, 256))
    body = {"image": b64(png_bytes(picture, PARAMETERS)), "model": settings_model, "rounds": 1}

    def answer(**flags):
        response = client.post("/clipprobe/v1/analyze", json={**body, **flags})
        assert response.status_code == 200, response.text
        return response.content, response.json()

    plain, _ = answer()
    numbers, data = answer(heatmaps=True)
    overlays, with_overlays = answer(heatmap_images=True)
    sheet, with_sheet = answer(contact_sheet=True)
    [maps] = data["heatmaps"]
    cells = sum(len(row) for p in maps["phrases"] for row in p["grid"])
    assert cells == 3 * len(maps["phrases"][0]["grid"]) ** 2
    # the maps: the JSON of their numbers and little else
    maps_json = len(json.dumps(maps, separators=(",", ":")))
    assert len(numbers) - len(plain) == pytest.approx(maps_json + len(',"heatmaps":[]'), abs=64)
    assert maps_json < 8 * cells + 600
    # the overlays: three PNGs of the picture's size, as base64, on top of the numbers
    pngs = [p["overlay_png"] for p in with_overlays["heatmaps"][0]["phrases"]]
    extra = sum(len(png) + len(',"overlay_png":""') for png in pngs)
    assert len(overlays) - len(numbers) == pytest.approx(extra, abs=64)
    assert "contact_sheet_png" not in with_overlays["heatmaps"][0]
    # the contact sheet alone: one PNG, no overlays
    [sheet_maps] = with_sheet["heatmaps"]
    assert all("overlay_png" not in p for p in sheet_maps["phrases"])
    extra = len(sheet_maps["contact_sheet_png"]) + len(',"contact_sheet_png":""')
    assert len(sheet) - len(numbers) == pytest.approx(extra, abs=64)
    assert len(numbers) - len(plain) < (len(overlays) - len(numbers)) / 10


def test_a_region_ranks_the_phrases_as_the_maps_say(webui, images, tiny_hf_clip_dir, hf_encoder):
    from clipprobe_ext.heatmaps.compute import phrase_heatmaps
    from clipprobe_ext.heatmaps.region import rank_region

    client = make_client(webui)
    picture = images[0]
    body = {"image": b64(png_bytes(picture, PARAMETERS)), "model": str(tiny_hf_clip_dir)}
    webui.opts.data["clipprobe_default_model"] = str(tiny_hf_clip_dir)
    response = client.post("/clipprobe/v1/analyze", json={**body, "region": [10, 10, 40, 30]})
    assert response.status_code == 200, response.text
    [data] = response.json()["heatmaps"]  # the region implies the maps (numbers only)
    assert "overlay_png" not in data["phrases"][0]
    phrases = ["a red cube", "blue sky", "studio lighting"]
    expected = rank_region(phrase_heatmaps(hf_encoder, picture, phrases), [10, 10, 40, 30])
    ranking = data["region"]["ranking"]
    assert [r["phrase"] for r in ranking] == [s.phrase for s in expected]
    for got, want in zip(ranking, expected):
        assert got["lift"] == pytest.approx(want.lift, rel=1e-3, abs=1e-3)
    for bad in ([1], [1, 2, 3], [1, 2, 3, 4, 5]):
        response = client.post("/clipprobe/v1/analyze", json={**body, "region": bad})
        assert response.status_code in (400, 422), (bad, response.text)
