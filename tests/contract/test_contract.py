"""The served OpenAPI document says exactly what the server answers.

Schemathesis reads `/openapi.json` from a real `orderdesk serve` and sends what it
generates from it — valid and invalid inputs, missing headers, undeclared methods,
sequences that follow the document's links — with every check on: no 5xx, every
status, content type, header and body as documented, invalid input refused and
valid input accepted. Once as a customer, once as an admin, on both databases.

CI runs a bounded number of examples per operation (`ORDERDESK_CONTRACT_EXAMPLES`,
default 15) with a fixed seed (`ORDERDESK_CONTRACT_SEED`); docs/api.md gives the
command for a longer run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contract.conftest import ContractServer

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")
ROOT = Path(__file__).parents[2]
EXAMPLES = os.environ.get("ORDERDESK_CONTRACT_EXAMPLES", "15")
SEED = os.environ.get("ORDERDESK_CONTRACT_SEED", "20261203")
RUN_TIMEOUT_SECONDS = 900


@pytest.mark.contract
@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
@pytest.mark.parametrize("role", ["customer", "admin"])
def test_every_answer_matches_the_document(
    contract_server: ContractServer, role: str, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "ORDERDESK_CONTRACT_TOKEN": contract_server.tokens[role],
        "ORDERDESK_CONTRACT_BASE_URL": contract_server.base_url,
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "run",
        f"{contract_server.base_url}/openapi.json",
        "--checks",
        "all",
        # Replaced by hooks.positive_data_acceptance_beyond_schema, which calls it.
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        "--no-color",
        "--output-sanitize",
        "false",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    run = subprocess.run(
        command,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert report.exists(), f"schemathesis wrote no report:\n{run.stdout}\n{run.stderr}"
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]["generated"]
    print(f"\ncontract ({role}): {cases} cases, {len(summary['failures'])} failure kinds")
    assert summary["complete"], run.stdout[-6000:]
    assert summary["operations"]["tested"] == summary["operations"]["total"], run.stdout[-6000:]
    assert not summary["errors"], run.stdout[-6000:]
    assert not summary["failures"], run.stdout[-20000:]
    assert cases > 0
