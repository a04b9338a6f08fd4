"""Resuming a run continues it: the best checkpoint is not overwritten by a worse epoch and the data is not replayed."""

from __future__ import annotations

from pathlib import Path

from training.train import best_so_far, epochs_logged

HISTORY = "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.3,1.8,0.30,1.9\n1,0.4,1.6,0.46,1.5\n2,0.5,1.5,0.44,1.5\n"


def test_a_fresh_run_has_no_history(tmp_path: Path) -> None:
    assert epochs_logged(tmp_path / "history.csv") == 0
    assert best_so_far(tmp_path / "history.csv") is None


def test_a_resumed_run_knows_its_finished_epochs_and_best_val_accuracy(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text(HISTORY)
    assert epochs_logged(history) == 3
    assert best_so_far(history) == 0.46
