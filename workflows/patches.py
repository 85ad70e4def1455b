"""Every `workflow.patched` id of Flagship's workflows, in the order they were introduced.

A patch keeps histories recorded before a change replaying down the old branch. Each has a golden
history in tests/histories/ replayed by tests/workflows/test_replay.py, and a row in
ARCHITECTURE.md "Patch history". Ids are dated, as PostHog names them; never reuse or rename one.
"""

from __future__ import annotations

# Search attributes and memo are upserted only when what they show changed (status, flag key,
# scheduled end, name); before, both were upserted on every transition.
UPSERT_ONLY_CHANGES = "upsert-only-changes-2026-12"
# Launch and end start the metrics recalculation as an abandoned child workflow.
RECALCULATE_ON_LAUNCH_AND_END = "recalculate-on-launch-end-2026-12"
# No such child when the transition reports the experiment has no metric to compute.
SKIP_RECALCULATION_WITHOUT_METRICS = "skip-recalculation-without-metrics-2026-12"
# A transition is checked by its update validator and by the activity against the row, and no
# longer a second time by the handler (signals and timers: by the activity only).
ACTIVITY_CHECKS_THE_ROW = "activity-checks-the-row-2026-12"
# The daily refresh asks each refreshed experiment with autopilot rules to evaluate them (signal
# `evaluate_rules`); before, only the experiment's own timer evaluated (DailyRecalculationWorkflow).
EVALUATE_AFTER_DAILY_REFRESH = "evaluate-after-daily-refresh-2026-12"
# A transition whose update id became known while it waited for the lock (another handler adopted
# the database's record of it: the first attempt committed, its workflow task was lost) returns
# that result instead of running its activity again and recording it twice.
RECHECK_RESULT_UNDER_LOCK = "recheck-result-under-lock-2026-12"
