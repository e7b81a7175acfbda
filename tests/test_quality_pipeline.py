"""Quality pipeline on the real model and the real corpus: loader, corpus reader, capture,
perplexity ordering, the ``nmsparse quality`` command. Tiny runs (a few windows of 64 tokens)."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from pathlib import Path

import pytest
import torch
from torch import nn

from golden.llm import capture, corpus, hooks, models, quality
from golden.llm.hooks import sparsify
from golden.llm.quality import Setting
from nmsparse import cli

ACTS = Path(__file__).resolve().parent.parent / "verif" / "data" / "smollm2_acts.pt"

# Public-domain fallbacks when the Austen package cannot be fetched (no apt): the openings of
# Persuasion (evaluation) and Northanger Abbey (calibration), Jane Austen, 1817.
_EVAL_FALLBACK = (
    "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who, for his own "
    "amusement, never took up any book but the Baronetage; there he found occupation for an "
    "idle hour, and consolation in a distressed one; there his faculties were roused into "
    "admiration and respect, by contemplating the limited remnant of the earliest patents; "
    "there any unwelcome sensations, arising from domestic affairs changed naturally into pity "
    "and contempt as he turned over the almost endless creations of the last century; and "
    "there, if every other leaf were powerless, he could read his own history with an interest "
    "which never failed. This was the page at which the favourite volume always opened: "
    "ELLIOT OF KELLYNCH HALL. Walter Elliot, born March 1, 1760, married, July 15, 1784, "
    "Elizabeth, daughter of James Stevenson, Esq. of South Park, in the county of Gloucester, "
    "by which lady (who died 1800) he has issue Elizabeth, born June 1, 1785; Anne, born "
    "August 9, 1787; a still-born son, November 5, 1789; Mary, born November 20, 1791."
)
_CALIB_FALLBACK = (
    "No one who had ever seen Catherine Morland in her infancy would have supposed her born "
    "to be an heroine. Her situation in life, the character of her father and mother, her own "
    "person and disposition, were all equally against her. Her father was a clergyman, "
    "without being neglected, or poor, and a very respectable man, though his name was "
    "Richard--and he had never been handsome. He had a considerable independence besides two "
    "good livings--and he was not in the least addicted to locking up his daughters."
)


@pytest.fixture(scope="module")
def lm():
    model, tok, name = models.load_model("smollm2")
    return model, tok, name


@pytest.fixture(scope="module")
def texts() -> tuple[str, str]:
    try:
        books = corpus.austen_books()
        return books[corpus.EVAL_BOOK], books[corpus.CALIB_BOOK]
    except corpus.CorpusUnavailable:
        return _EVAL_FALLBACK, _CALIB_FALLBACK


# ------------------------------------------------------------------ R lazy-load reader


def _xdr_str(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">ii", 9, -1)
    b = s.encode()
    return struct.pack(">ii", 9 | (1 << 15), len(b)) + b  # CHARSXP, UTF-8


def _xdr_strvec(items: list[str | None]) -> bytes:
    return struct.pack(">ii", 16, len(items)) + b"".join(_xdr_str(s) for s in items)


def _xdr_named_list(d: dict[str, bytes]) -> bytes:
    # VECSXP with attributes: pairlist(names = c(...))
    body = struct.pack(">ii", 19 | (1 << 9), len(d)) + b"".join(d.values())
    attr = struct.pack(">i", 2 | (1 << 10))  # LISTSXP with tag
    attr += struct.pack(">i", 1) + _xdr_str("names")  # SYMSXP 'names'
    attr += _xdr_strvec(list(d)) + struct.pack(">i", 254)
    return body + attr


def _xdr(obj: bytes, version: int = 3) -> bytes:
    head = b"X\n" + struct.pack(">iii", version, 0x040300, 0x030500)
    if version == 3:
        head += struct.pack(">i", 5) + b"UTF-8"
    return head + obj


def test_unserialize_character_vector_and_named_list() -> None:
    assert corpus.unserialize(_xdr(_xdr_strvec(["a", None, "é"]), 2)) == ["a", None, "é"]
    ints = struct.pack(">ii", 13, 3) + struct.pack(">3i", 1, -(2**31), 7)
    obj = corpus.unserialize(_xdr(_xdr_named_list({"x": ints, "y": _xdr_strvec(["z"])})))
    assert obj.attributes["names"] == ["x", "y"]
    assert obj.value == [[1, None, 7], ["z"]]
    with pytest.raises(ValueError, match="format"):
        corpus.unserialize(b"A\n" + bytes(20))


def test_read_rdata_lazy_load_database(tmp_path: Path) -> None:
    recs = {"emma": _xdr(_xdr_strvec(["EMMA", "", "Chapter 1"])), "tiny": _xdr(_xdr_strvec(["x"]))}
    blob, offsets = b"", {}
    for name, payload in recs.items():
        rec = struct.pack(">I", len(payload)) + zlib.compress(payload)
        offsets[name] = struct.pack(">ii", 13, 2) + struct.pack(">2i", len(blob), len(rec))
        blob += rec
    index = _xdr_named_list(
        {
            "variables": _xdr_named_list(offsets),
            "references": _xdr_named_list({}),
            "compressed": struct.pack(">ii", 10, 1) + struct.pack(">i", 1),
        }
    )
    (tmp_path / "Rdata.rdb").write_bytes(blob)
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(_xdr(index)))
    out = corpus.read_rdata(tmp_path / "Rdata")
    assert out == {"emma": ["EMMA", "", "Chapter 1"], "tiny": ["x"]}


def test_austen_corpus_from_debian_package() -> None:
    try:
        books = corpus.austen_books()
    except corpus.CorpusUnavailable as exc:
        pytest.skip(f"corpus unavailable here: {exc}")
    assert set(books) == set(corpus.BOOKS)
    assert books["persuasion"].startswith("Persuasion")
    assert "Sir Walter Elliot, of Kellynch Hall" in books["persuasion"]
    assert books["prideprejudice"].count("Elizabeth") > 500
    assert all(len(t) > 400_000 for t in books.values())
    text, label = corpus.load_text("persuasion")
    assert label == "austen:persuasion" and text == books["persuasion"]


def test_text_sources_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither an Austen book"):
        corpus.load_text("moby-dick")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(ValueError, match="empty"):
        corpus.load_text(tmp_path / "empty.txt")
    (tmp_path / "t.txt").write_text("hello world")
    assert corpus.load_text(tmp_path / "t.txt") == ("hello world", "t.txt")


# ------------------------------------------------------------------------ model loader


def test_model_paths_are_validated(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither 'smollm2' nor an existing directory"):
        models.load_model(tmp_path / "missing")
    with pytest.raises(ValueError, match="config.json"):
        models.load_model(tmp_path)
    assert models.smollm2_gguf().name == models.SMOLLM2_GGUF


def test_smollm2_loads_as_llama_and_predicts_text(lm) -> None:
    model, tok, name = lm
    assert "SmolLM2" in name and model.dtype == torch.float32
    ids = tok(
        "It is a truth universally acknowledged, that a single man in possession",
        return_tensors="pt",
    ).input_ids
    with torch.no_grad():
        nxt = model(ids).logits[0, -1].argmax()
    assert tok.decode(nxt).strip() == "of"


def test_model_path_loads_any_local_hf_directory(lm) -> None:
    # the dequantized cache is itself a plain Hugging Face model directory
    model, tok, _ = lm
    directory = models.smollm2_cache_dir()
    assert (directory / "config.json").is_file()
    other, tok2, name = models.load_model(directory)
    assert name == directory.name
    ids = tok("Captain Wentworth", return_tensors="pt").input_ids
    assert torch.equal(ids, tok2("Captain Wentworth", return_tensors="pt").input_ids)
    with torch.no_grad():
        assert torch.equal(other(ids).logits, model(ids).logits)


def test_real_model_hooks_keep_n_of_m_lm_head_dense(lm) -> None:
    model, tok, _ = lm
    ids = tok("Anne Elliot walked to Uppercross with her sister.", return_tensors="pt").input_ids
    seen: dict[str, torch.Tensor] = {}
    names = ["model.layers.3.self_attn.k_proj", "model.layers.3.mlp.down_proj", "lm_head"]
    mods = dict(model.named_modules())
    with torch.no_grad():
        ref = model(ids).logits
        with sparsify(model, "8:16") as h:
            hs = [
                mods[n].register_forward_pre_hook(
                    lambda _m, a, _n=n: seen.__setitem__(_n, a[0].clone())
                )
                for n in names
            ]
            out = model(ids).logits
            for hk in hs:
                hk.remove()
        assert torch.equal(model(ids).logits, ref)
    assert len(h.layers) == 7 * 30 and h.sites == 4 * 30
    for n in names[:2]:
        g = seen[n].reshape(-1, 16)
        assert ((g != 0).sum(-1) == 8).all(), n
    assert ((seen["lm_head"].reshape(-1, 16) != 0).sum(-1) > 8).any()
    assert not torch.equal(out, ref)


# ------------------------------------------------------------------------ activations


def test_shipped_activation_file() -> None:
    acts = torch.load(ACTS)
    assert ACTS.stat().st_size < 300_000
    assert isinstance(acts, dict) and set(acts) == set(capture.DEFAULT_LAYERS)
    groups = 0
    for name, t in acts.items():
        assert t.dtype == torch.bfloat16 and t.dim() == 2 and t.shape[1] % 32 == 0, name
        assert torch.isfinite(t).all()
        groups += t.numel() // 16
    assert 2000 <= groups <= 10000
    assert acts["model.layers.29.mlp.down_proj"].float().abs().max() > 50  # real outliers


def test_capture_reproduces_shipped_activations(lm, texts) -> None:
    model, tok, _ = lm
    shipped = torch.load(ACTS)
    ev, _ = texts
    if "Sir Walter Elliot" not in ev[:2000] or ev is _EVAL_FALLBACK:
        pytest.skip("the shipped file was made from the Austen corpus")
    text = ev[ev.index("Sir Walter Elliot") :]
    ids = tok(text[:512], return_tensors="pt").input_ids[:, :64]
    n = ids.shape[1]
    pos = sorted({round(i * (n - 1) / 9) for i in range(10)})
    layers = ["model.layers.0.self_attn.q_proj", "model.layers.15.mlp.down_proj"]
    got = capture.capture_linear_inputs(model, ids, layers, positions=pos)
    for name in layers:
        torch.testing.assert_close(got[name].float(), shipped[name].float(), rtol=2e-2, atol=2e-2)
    with pytest.raises(ValueError, match="not an nn.Linear"):
        capture.capture_linear_inputs(model, ids, ["model.norm"])


# ------------------------------------------------------------------------- perplexity


def test_windows_and_settings_validation() -> None:
    w = quality.windows(torch.arange(100), 64, 20)
    assert w.shape == (3, 20) and w[1, 0] == 20
    with pytest.raises(ValueError, match="fewer than one window"):
        quality.windows(torch.arange(10), 64, 32)
    with pytest.raises(ValueError, match="window"):
        quality.windows(torch.arange(10), 64, 1)
    with pytest.raises(ValueError, match="needs an activation pattern"):
        Setting("dense", mitigation="var")
    s = quality.standard_settings()
    assert len(s) == 22 and s[0].is_dense and len(set(s)) == len(s)
    assert Setting("8:16", "magnitude", "spts").needs_calibration
    assert Setting("8:16", "magnitude", "lpts").needs_calibration
    assert not Setting("8:16", "magnitude", "spts_paper").needs_calibration  # evaluated text
    assert Setting("8:16", "magnitude", "scaling").mitigation == "scaling_static"


def test_perplexity_ordering_on_real_model_and_text(lm, texts) -> None:
    model, tok, name = lm
    ev, cal = texts
    settings = [
        Setting(),
        Setting("2:4"),
        Setting("8:16"),
        Setting("unstructured:0.5"),
        Setting("8:16", "magnitude", "spts"),
        Setting("dense", weight_pattern="2:4"),
    ]
    recs = quality.evaluate(
        model,
        tok,
        settings,
        ev,
        tokens=128,
        window=64,
        calib_text=cal,
        calib_tokens=64,
        progress=False,
        meta={"model": name},
    )
    assert [r["pattern"] for r in recs] == [
        "dense",
        "2:4",
        "8:16",
        "unstructured:0.5",
        "8:16",
        "dense",
    ]
    for r in recs:
        assert r["tokens"] == 128 and r["predicted"] == 126 and r["model"] == name
        assert 1.0 < r["ppl"] < 1e6
    dense = recs[0]["ppl"]
    assert all(r["ppl"] > dense for r in recs[1:]), [r["ppl"] for r in recs]
    # the paper's finding holds even on a tiny run: 2:4 hurts more than 8:16
    assert recs[1]["ppl"] > recs[2]["ppl"]
    with torch.no_grad():  # evaluation left the model dense
        ids = tok("Anne", return_tensors="pt").input_ids
        h = hooks.apply_sparsity(model, None)
        h.remove()
        assert not any(m._forward_pre_hooks for m in model.modules() if isinstance(m, nn.Linear))
    with pytest.raises(ValueError, match="calibration text must differ"):
        quality.evaluate(
            model,
            tok,
            [Setting("2:4", "magnitude", "spts")],
            ev,
            tokens=64,
            window=64,
            calib_text=ev,
            progress=False,
        )
    del ids


def test_nmsparse_quality_command(tmp_path: Path, capsys, texts) -> None:
    ev, _ = texts
    txt = tmp_path / "eval.txt"
    txt.write_text(ev[:4000])
    out = tmp_path / "q.json"
    rc = cli.main(
        [
            "quality",
            "--patterns",
            "4:8",
            "--text",
            str(txt),
            "--tokens",
            "64",
            "--window",
            "32",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    recs = json.loads(out.read_text())
    assert [(r["pattern"], r["criterion"], r["mitigation"], r["weight_pattern"]) for r in recs] == [
        ("dense", None, None, None),
        ("4:8", "magnitude", None, None),
    ]
    assert recs[0]["ppl"] < recs[1]["ppl"] and recs[0]["text"] == "eval.txt"
    table = capsys.readouterr().out
    assert "4:8" in table and "x dense" in table
    rc = cli.main(["quality", "--patterns", "3:3", "--text", str(txt)])
    assert rc == 2 and "invalid pattern '3:3'" in capsys.readouterr().err
    rc = cli.main(
        [
            "quality",
            "--patterns",
            "2:4",
            "--mitigation",
            "spts",
            "--text",
            str(txt),
            "--calib-text",
            str(txt),
        ]
    )
    assert rc == 2 and "must differ" in capsys.readouterr().err


def test_every_method_runs_in_the_suite_and_calibration_is_cached(tmp_path: Path, texts) -> None:
    """``nmsparse quality --suite`` at a tiny size: every criterion and mitigation of the
    paper runs on the real model; a second run takes every calibration from the cache."""
    ev, cal = texts
    (tmp_path / "eval.txt").write_text(ev[:6000])
    (tmp_path / "calib.txt").write_text(cal[:6000])
    args = ["quality", "--suite", "--text", str(tmp_path / "eval.txt"), "--calib-text",
            str(tmp_path / "calib.txt"), "--tokens", "64", "--window", "32", "--batch", "2",
            "--calib-tokens", "32", "--segments", "1", "--segment-tokens", "32",
            "--no-progress"]
    runs = []
    # the second run: only the calibrated settings, which must now come from the cache
    again = ["--patterns", "8:16", "--mitigation", "spts,spts_paper,scaling_static,lpts,out_bias"]
    for i, extra in enumerate(([], again)):
        out = tmp_path / f"q{i}.json"
        assert cli.main([*[a for a in args if extra == [] or a != "--suite"], *extra,
                         "--json", str(out)]) == 0
        runs.append(json.loads(out.read_text()))
    first, second = runs
    got = {(r["pattern"], r["criterion"], r["mitigation"], r["weight_pattern"]) for r in first}
    want = {(s.pattern, s.criterion, s.mitigation, s.weight_pattern)
            for s in quality.standard_settings()}
    assert got == want and len(first) == len(want)
    for r in first:
        assert 1.0 < r["ppl"] < 1e7 and r["batch"] == 2 and r["tokens"] == 64, r
        calibrated = r["mitigation"] in ("spts", "spts_paper", "scaling_static", "lpts",
                                         "out_bias")
        assert (r["calibration"] is not None) == calibrated, r
    by = {r["mitigation"]: r for r in first if r["pattern"] == "8:16"}
    assert "sparsified model, first 1 forward call (2 windows each)" in (
        by["spts_paper"]["calibration"])
    assert by["spts"]["calibration"].startswith("dense model, 32 tokens")
    assert "trained on 1 segments x 32 tokens" in by["lpts"]["calibration"]
    assert "out_bias trained" in by["out_bias"]["calibration"]
    assert len(second) == 6  # dense and the five calibrated ones
    key = lambda r: (r["pattern"], r["criterion"], r["mitigation"], r["weight_pattern"])  # noqa: E731
    ppl = {key(r): r["ppl"] for r in first}
    for b in second:
        assert b["ppl"] == ppl[key(b)], b
        if b["calibration"] is not None:
            assert b["calib_cached"] and b["calib_seconds"] < 5, b


@pytest.mark.slow
def test_paper_ordering_of_patterns(lm, texts) -> None:
    """2048 tokens: more flexible patterns lose less; activation 2:4 beats weight 2:4."""
    model, tok, _ = lm
    ev, _ = texts
    if ev is _EVAL_FALLBACK:
        pytest.skip("needs the Austen corpus for 2048 tokens")
    settings = [Setting()] + [Setting(p) for p in quality.DEFAULT_PATTERNS]
    settings.append(Setting("dense", weight_pattern="2:4"))
    recs = quality.evaluate(model, tok, settings, ev, tokens=2048, window=512, progress=False)
    ppl = {(r["pattern"], r["weight_pattern"]): r["ppl"] for r in recs}
    chain = [ppl[(p, None)] for p in ("dense", "unstructured:0.5", "16:32", "8:16", "4:8", "2:4")]
    assert chain == sorted(chain), chain
    assert ppl[("2:4", None)] < ppl[("dense", "2:4")]
