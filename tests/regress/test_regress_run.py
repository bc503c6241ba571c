"""`gpbench regress` end to end on the scripted backend: verdicts, skips, exit codes, --update."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from regress_fixtures import CHECKPOINTS_MD, ManifestWriter, scripted_entry

from gpbench.cli import cli
from gpbench.regress import run as regress_run
from gpbench.regress.manifest import load_manifest, render_table
from gpbench.regress.run import (
    EXIT_NOT_CHECKED,
    EXIT_OK,
    EXIT_REGRESSION,
    locate,
    packaged_data,
    packaged_manifest,
    run_regress,
)


def _regress(path: Path, *args: str, input: str | None = None) -> Result:
    runs = path.parent / "runs"
    return CliRunner().invoke(
        cli, ["regress", "--manifest", str(path), "--runs-dir", str(runs), *args], input=input
    )


def _recorded(write_manifest: ManifestWriter, **check: Any) -> Path:
    """A manifest whose scripted entry's expectations were recorded by --update."""
    path = write_manifest([scripted_entry(**check)])
    result = _regress(path, "--update", "--yes")
    assert result.exit_code == 0, result.output
    return path


def _hub_entry(name: str, hub: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "hub": hub,
        "licence": "x",
        "architecture": "x",
        "backend": "hf",
        **extra,
        "checks": [
            {
                "task": "gp-l",
                "split": "ood-rule",
                "n": 10,
                "seed": 42,
                "decoding": {"temperature": 0.6, "top_p": 0.9, "max_tokens": 256},
                "budget": 5,
                "paper": {"success": 0.115},
            }
        ],
    }


def _path_entry(name: str, path: str, **extra: Any) -> dict[str, Any]:
    entry = _hub_entry(name, "x/y", **extra)
    del entry["hub"]
    return {"path": path, **entry}


def test_an_unchanged_checkpoint_passes_and_a_perturbed_one_is_flagged(
    write_manifest: ManifestWriter,
) -> None:
    path = _recorded(write_manifest, n=120)
    again = _regress(path)
    assert again.exit_code == EXIT_OK, again.output
    verdicts = [x.split()[-1] for x in again.output.splitlines() if x.startswith("scripted ")]
    assert verdicts and set(verdicts) == {"pass"}, again.output
    # The same checkpoint answering worse (error rate 0.3 -> 0.6): flagged, exit 3.
    text = path.read_text().replace('"policy": "reference:0.3"', '"policy": "reference:0.6"')
    text = text.replace("policy `reference:0.3`", "policy `reference:0.6`")
    path.write_text(text)
    worse = _regress(path)
    assert worse.exit_code == EXIT_REGRESSION, worse.output
    line = next(x for x in worse.output.splitlines() if x.split()[3:4] == ["success"])
    assert line.endswith("regression (below)")


def test_update_records_status_rates_when_success_is_near_zero(
    write_manifest: ManifestWriter,
) -> None:
    path = write_manifest(
        [
            scripted_entry(
                policy="constant:no formula here", expect={"success": {"rate": 0.2, "tol": 0.05}}
            )
        ]
    )
    result = _regress(path, "--update", "--yes")
    assert result.exit_code == 0, result.output
    check = load_manifest(path).entries[0].checks[0]
    rates = {e.metric: (e.rate, e.tol) for e in check.expect}
    assert rates == {
        "success": (0.0, 0.05),
        "parse_rate": (0.0, 0.05),
        "truncation_rate": (0.0, 0.05),
        "status:illegal_formula": (1.0, 0.05),
    }
    assert check.recorded.startswith("gpbench ")


def test_update_shows_the_diff_and_rewrites_table_and_block(write_manifest: ManifestWriter) -> None:
    path = write_manifest(
        [
            scripted_entry(
                expect={
                    "success": {"rate": 0.2, "tol": 0.04},
                    "status:wrong_numbers": {"rate": 0.5, "tol": 0.1},
                }
            )
        ]
    )
    before = path.read_text()
    declined = _regress(path, "--update", input="n\n")
    assert declined.exit_code == EXIT_REGRESSION, declined.output  # 70% is far from 20%
    assert '-            "success": {"rate": 0.2, "tol": 0.04},' in declined.output
    assert "left unchanged" in declined.output and path.read_text() == before
    accepted = _regress(path, "--update", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    manifest = load_manifest(path)  # table and block agree after the rewrite
    check = manifest.entries[0].checks[0]
    expect = {e.metric: e for e in check.expect}
    assert expect["success"].rate == pytest.approx(0.7, abs=0.1) and expect["success"].tol == 0.04
    assert expect["status:wrong_numbers"].tol == 0.1  # tolerances are kept
    assert any(m.startswith("status:correct") for m in expect)  # every observed status recorded
    table_row = next(
        line for line in path.read_text().splitlines() if line.startswith("| scripted |")
    )
    assert f"success {100 * expect['success'].rate:.1f}% ± 4.0" in table_row
    assert "Prose that --update must keep." in path.read_text()
    # Recorded from this run, the expectations now pass.
    assert _regress(path).exit_code == EXIT_OK


def test_write_table_rewrites_only_the_table(write_manifest: ManifestWriter) -> None:
    path = write_manifest([scripted_entry()], table=render_table(()))
    assert _regress(path).exit_code == 1  # table and block differ
    block_before = path.read_text().split("```json gpbench-regress")[1]
    result = _regress(path, "--write-table", "--yes")
    assert result.exit_code == 0, result.output
    assert "+| scripted |" in result.output
    assert path.read_text().split("```json gpbench-regress")[1] == block_before
    load_manifest(path)
    assert "already up to date" in _regress(path, "--write-table", "--yes").output


def test_skips_name_their_reasons(
    write_manifest: ManifestWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("huggingface_hub", reason="hub ids are looked up with huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(regress_run, "gpu_available", lambda: (False, "no CUDA GPU is visible"))
    path = write_manifest(
        [
            scripted_entry(),
            _hub_entry("big", "nobody-here/not-cached-model", needs_gpu=True),
            _path_entry("local", "ckpts/missing", build="python make_it.py"),
        ]
    )
    result = _regress(path, "--json", str(path.parent / "summary.json"))
    assert result.exit_code == EXIT_OK, result.output
    lines = result.output.splitlines()
    assert (
        "skipped big: needs a GPU: no CUDA GPU is visible; not reachable: the hub is offline "
        "(HF_HUB_OFFLINE=1) and nobody-here/not-cached-model is not in the local cache"
    ) in lines
    missing = path.parent / "ckpts/missing"
    assert (
        f"skipped local: not reachable: path missing: {missing}; build it with: python make_it.py"
        in lines
    )
    summary = json.loads((path.parent / "summary.json").read_text())
    assert [s["name"] for s in summary["skipped"]] == ["big", "local"]
    assert summary["checkpoints"][0]["name"] == "scripted" and summary["exit_code"] == 0
    assert summary["checkpoints"][0]["checks"][0]["comparisons"][0]["method"] == "exact binomial"


def test_exit_status_4_when_nothing_or_an_only_checkpoint_is_skipped(
    write_manifest: ManifestWriter,
) -> None:
    path = write_manifest([scripted_entry(), _path_entry("local", "nowhere")])
    only = _regress(path, "--only", "local")
    assert only.exit_code == EXIT_NOT_CHECKED and "skipped local: not reachable" in only.output
    lonely = write_manifest([_path_entry("local", "nowhere")])
    assert _regress(lonely).exit_code == EXIT_NOT_CHECKED


def test_only_with_an_unknown_name_is_a_one_line_error(write_manifest: ManifestWriter) -> None:
    path = write_manifest([scripted_entry("tiny-cpu-reference")])
    result = _regress(path, "--only", "tiny-cpu-refrence")
    assert result.exit_code == 1
    assert (
        "no checkpoint named 'tiny-cpu-refrence'; did you mean 'tiny-cpu-reference'?"
        in result.output
    )


def test_model_root_is_searched_first(write_manifest: ManifestWriter, tmp_path: Path) -> None:
    root = tmp_path / "models"
    (root / "local").mkdir(parents=True)
    (root / "local" / "config.json").write_text("{}")
    (root / "owner" / "model").mkdir(parents=True)
    (root / "owner" / "model" / "config.json").write_text("{}")
    path = write_manifest([_path_entry("local", "far/away"), _hub_entry("hubbed", "owner/model")])
    manifest = load_manifest(path)
    assert locate(manifest.entries[0], path.parent, root) == (str(root / "local"), "")
    assert locate(manifest.entries[1], path.parent, root) == (str(root / "owner" / "model"), "")
    model, why = locate(manifest.entries[0], path.parent, tmp_path / "empty")
    assert model is None and "nor under --model-root" in why


def test_the_packaged_manifest_links_to_the_repository_one() -> None:
    # One file, two names: people read and edit the top-level one (a plain file, so the
    # repository's web view shows it); the package's is a link that the wheel build copies.
    assert not CHECKPOINTS_MD.is_symlink() and packaged_manifest().is_symlink()
    assert CHECKPOINTS_MD.resolve() == packaged_manifest().resolve()
    assert packaged_manifest().parent == packaged_data()
    assert (packaged_data() / "tiny-cpu-reference" / "config.json").is_file()


def test_a_relative_path_falls_back_to_the_packaged_data(
    write_manifest: ManifestWriter, tmp_path: Path
) -> None:
    # A copy of the packaged checkpoints.md anywhere else still finds the shipped reference.
    path = write_manifest([_path_entry("ref", "tiny-cpu-reference"), _path_entry("gone", "nope")])
    manifest = load_manifest(path)
    shipped = packaged_data() / "tiny-cpu-reference"
    assert locate(manifest.entries[0], path.parent, None) == (str(shipped), "")
    model, why = locate(manifest.entries[1], path.parent, None)
    assert model is None and why == f"path missing: {path.parent / 'nope'}"
    # The manifest's own folder comes first.
    (tmp_path / "tiny-cpu-reference").mkdir()
    (tmp_path / "tiny-cpu-reference" / "config.json").write_text("{}")
    assert locate(manifest.entries[0], path.parent, None) == (
        str(tmp_path / "tiny-cpu-reference"),
        "",
    )


def test_a_linked_manifest_resolves_paths_from_its_real_folder(
    write_manifest: ManifestWriter, tmp_path: Path
) -> None:
    real = tmp_path / "real"
    (real / "ckpt").mkdir(parents=True)
    (real / "ckpt" / "config.json").write_text("{}")
    write_manifest([_path_entry("local", "ckpt")]).rename(real / "checkpoints.md")
    link = tmp_path / "elsewhere" / "checkpoints.md"
    link.parent.mkdir()
    link.symlink_to(real / "checkpoints.md")
    report = run_regress(load_manifest(link), runs_dir=tmp_path / "runs")
    # Reached (so evaluated, and failing on the fake config), not skipped as missing.
    assert [s.name for s in report.skipped] == []
    assert [r.model for r in report.results] == [str(real / "ckpt")]


def test_a_reachable_checkpoint_that_fails_to_load_fails_the_run(
    write_manifest: ManifestWriter, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # no tokenizer, no weights
    path = write_manifest([_path_entry("broken", "broken")])
    result = _regress(path)
    assert result.exit_code == EXIT_REGRESSION, result.output
    assert "broken               error: " in result.output and "no tokenizer" in result.output


def test_json_to_stdout_keeps_stdout_pure(write_manifest: ManifestWriter) -> None:
    path = write_manifest([scripted_entry()])
    result = CliRunner().invoke(
        cli,
        [
            "regress",
            "--manifest",
            str(path),
            "--runs-dir",
            str(path.parent / "runs"),
            "--json",
            "-",
        ],
    )
    stdout = result.stdout
    data = json.loads(stdout)
    assert data["checkpoints"][0]["checks"][0]["comparisons"][0]["metric"] == "success"
    assert "verdict" in result.stderr  # the table went to stderr


def test_runs_are_made_afresh(write_manifest: ManifestWriter) -> None:
    path = write_manifest([scripted_entry()])
    manifest = load_manifest(path)
    first = run_regress(manifest, runs_dir=path.parent / "runs")
    episodes = first.results[0].checks[0].folder / "episodes.jsonl"
    episodes.write_text("")  # a tampered stored run must not be reused
    second = run_regress(manifest, runs_dir=path.parent / "runs")
    assert second.results[0].checks[0].comparisons == first.results[0].checks[0].comparisons
    assert episodes.read_text()


def test_threads_are_applied_once_before_a_model_runs_in_this_process(
    write_manifest: ManifestWriter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from gpbench.harness.threads import ThreadCount

    applied: list[int | None] = []

    def fake_apply(requested: int | None = None) -> ThreadCount:
        applied.append(requested)
        return ThreadCount(requested or 1, "--threads")

    monkeypatch.setattr(regress_run, "apply_threads", fake_apply)
    path = write_manifest([scripted_entry()])
    report = run_regress(load_manifest(path), runs_dir=tmp_path / "runs", threads=2)
    assert applied == [] and report.threads is None and report.to_json()["threads"] is None

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    evaluated: list[str] = []
    monkeypatch.setattr(
        regress_run, "_evaluate", lambda entry, *args: evaluated.append(entry.name) or ()
    )
    entries = [_path_entry("one", str(model)), _path_entry("two", str(model)), scripted_entry()]
    path = write_manifest(entries)
    report = run_regress(load_manifest(path), runs_dir=tmp_path / "runs", threads=2)
    assert evaluated == ["one", "two", "scripted"] and applied == [2]
    assert report.threads == ThreadCount(2, "--threads")


def test_a_check_in_reference_mode_is_scored_by_the_paper_code(
    write_manifest: ManifestWriter,
) -> None:
    """``"mode": "reference"``: the run is evaluated (and recorded) in reference mode, and the
    table says so; a check without the key keeps the default mode."""
    path = write_manifest(
        [scripted_entry(mode="reference"), scripted_entry(name="default-mode", n=20)]
    )
    manifest = load_manifest(path)
    assert [e.checks[0].mode for e in manifest.entries] == ["reference", "gpbench"]
    assert "; reference mode" in render_table(manifest.entries)[2]
    report = run_regress(manifest, runs_dir=path.parent / "runs")
    folders = [result.checks[0].folder for result in report.results]
    modes = [json.loads((f / "run.json").read_text())["run_key"]["mode"] for f in folders]
    assert modes == ["reference", "gpbench"]
