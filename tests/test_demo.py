"""`edgewise demo` tells the whole story on small data: the batch half and the fleet half."""

from __future__ import annotations

from edgewise.demo import run_demo


def test_demo_scores_then_rolls_out_raises_drift_and_halts_a_bad_version(tmp_path):
    lines: list[str] = []
    story = run_demo(tmp_path, rows=100_000, train_rows=2_000, devices=8, say=lines.append)
    text = "\n".join(lines)

    summary = story.batch.summary
    assert summary.rows_read == 100_000
    assert 0 < summary.rows_quarantined < 100
    assert summary.rows_scored + summary.rows_quarantined == 100_000
    assert (tmp_path / "credit-risk-1.ewb").exists()
    assert "fidelity against scikit-learn: native: max |diff|" in text
    assert "fidelity against scikit-learn: onnxruntime: max |diff|" in text
    assert "column 'channel' is null" in text
    assert "verified: signed as credit-risk version 1 under root version 1" in text
    assert (tmp_path / "repo" / "metadata" / "1.root.json").exists()

    fleet = story.fleet
    assert fleet is not None
    assert fleet.v1_rollout["state"] == "completed"
    assert fleet.v1_rollout["device_states"] == {"succeeded": 8}
    # Only the column the simulator shifted is called drifted.
    assert fleet.drift_alert["detail"]["drifted_columns"] == ["income"]
    assert fleet.v2_rollout["state"] == "halted"
    assert fleet.v2_rollout["device_states"].get("succeeded", 0) == 0
    assert "failure rate" in fleet.v2_rollout["reason"]
    assert "v2 halted by itself" in text
