"""Resources of the shipped modules against the stored baselines (slow: full synthesis).

Results are cached under ``reports/.cache`` by a hash of the Verilog and the tool versions,
so after ``make report`` this test takes seconds; cold it synthesizes, places and routes every
shipped module (about half an hour on two cores).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nmsparse.report import baselines, cli, records, synth

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "reports" / "baselines" / "resources.json"


@pytest.mark.slow
def test_shipped_resources_within_baseline():
    base = baselines.load(BASELINE)
    tools = synth.tool_versions()
    recorded = {k: v for k, v in (base.get("tools") or {}).items() if k in tools}
    if recorded != tools:
        pytest.skip(f"baselines were recorded with {recorded}, the tools are {tools}: "
                    "regenerate with `nmsparse report --write-baselines "
                    "reports/baselines/resources.json`")
    points = records.find_points(REPO / "hdl", "shipped")
    assert {p.module for p in points} == set(base["modules"]), \
        "the shipped modules changed: regenerate the baselines"
    jobs = int(os.environ.get("NMSPARSE_JOBS", "2"))
    recs = cli.build(points, REPO / "reports", jobs=jobs, progress=False)
    problems = baselines.compare(recs, base)
    assert not problems, "resources drifted beyond tolerance:\n" + "\n".join(problems)
