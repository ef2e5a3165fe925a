"""Step bookkeeping shared by the training stages: when it logs, reports and checkpoints."""

from promptmid.progress import Progress
from promptmid.training.steps import after_step


def test_logs_every_n_steps_and_the_last_and_checkpoints_before_the_end_only():
    logged, reported, saved = [], [], []
    progress = Progress(lambda f, m: reported.append(round(f, 2)))
    for step in range(1, 8):
        after_step(step, 7, 3, lambda: f"step {step}", logged.append, progress, 2, lambda: saved.append(step))
    assert logged == ["step 3", "step 6", "step 7"]
    assert reported == [round(3 / 7, 2), round(6 / 7, 2), 1.0]
    assert saved == [2, 4, 6]  # not at step 7: the finished run saves its own
