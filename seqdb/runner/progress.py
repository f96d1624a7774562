"""Progress lines for a worker: trial, epoch, step, loss, tokens/s, ETA.

One line every `every_s` seconds per worker (several worker processes share a terminal, so
no live bars), plus a line when a trial starts and ends.
"""

from __future__ import annotations

import time
from typing import NamedTuple, Optional

from rich.console import Console


def _fmt_rate(x: Optional[float]) -> str:
    if x is None:
        return "-"
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def _fmt_eta(seconds: Optional[float]) -> str:
    if seconds is None or seconds < 0:
        return "-"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, label: str, *, enabled: bool = True, every_s: float = 5.0, console: Optional[Console] = None):
        self.label, self.enabled, self.every_s = label, enabled, every_s
        self.console = console or Console(highlight=False)
        self.total_steps: Optional[int] = None  # set by the executor when it knows
        self.tokens_per_s: Optional[float] = None
        self._trial: Optional[int] = None
        self._t0 = self._last = 0.0
        self._step0 = 0
        self._state: dict = {}

    def say(self, text: str) -> None:
        if self.enabled:
            self.console.print(f"[{self.label}] {text}", markup=False)

    def start_trial(self, lease, resume_step: int) -> None:  # noqa: ANN001
        self._trial, self._t0, self._last = lease.trial_id, time.monotonic(), time.monotonic()
        self._step0, self.total_steps, self._state = resume_step, None, {}
        how = f"resuming at step {resume_step} (attempt {lease.attempt})" if resume_step else f"attempt {lease.attempt}"
        self.say(f"trial {lease.trial_id} (study {lease.study_id}): start, {how}")

    def update(self, step: int, epoch: int, metrics: dict) -> None:
        st = self._state
        st["step"], st["epoch"] = step, epoch
        for key in ("train_loss", "val_loss"):
            if key in metrics:
                st[key] = metrics[key]
        if "tokens_per_s" in metrics:
            self.tokens_per_s = float(metrics["tokens_per_s"])
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.say(self.line(now))

    def line(self, now: float) -> str:
        st = self._state
        step, total = st.get("step", 0), self.total_steps
        eta = None
        if total and step > self._step0:
            eta = (now - self._t0) / (step - self._step0) * (total - step)
        parts = [f"trial {self._trial}", f"epoch {st.get('epoch', 0)}", f"step {step}" + (f"/{total}" if total else "")]
        if "train_loss" in st:
            parts.append(f"loss {st['train_loss']:.4f}")
        if "val_loss" in st:
            parts.append(f"val {st['val_loss']:.4f}")
        parts += [f"{_fmt_rate(self.tokens_per_s)} tok/s", f"ETA {_fmt_eta(eta)}"]
        return " · ".join(parts)

    def end_trial(self, lease, outcome) -> None:  # noqa: ANN001
        took = time.monotonic() - self._t0
        best = f", best val {outcome.best_val_loss:.4f} at step {outcome.best_step}" if outcome.best_val_loss is not None else ""
        err = f": {outcome.error}" if outcome.error else ""
        self.say(f"trial {lease.trial_id}: {outcome.state} in {took:.1f}s{best}{err}")


# --------------------------------------------------------------------------------------
# the experiment's progress: one display for a pool of workers over many studies
# --------------------------------------------------------------------------------------
# Read from the database every `every_s` seconds (workers may be other processes or other
# hosts): studies done/total, trials by state, the trial each worker runs, and an ETA from
# the throughput measured since the display started (FLOPs of steps done / seconds).
OPEN_STATES = ("pending", "stopped", "running")


class _TrialRow(NamedTuple):
    trial_id: int
    study_id: int
    state: str
    step: int


class ExperimentProgress:
    def __init__(self, engine, experiment: str, study_ids: list[int], *, live: bool, every_s: float = 30.0,  # noqa: ANN001
                 console: Optional[Console] = None):
        self.engine, self.experiment, self.study_ids = engine, experiment, list(study_ids)
        self.live, self.every_s = live, every_s
        self.console = console or Console(highlight=False)
        self._costs: dict[int, tuple[int, float]] = {}  # trial_id -> (steps_total, flops_per_step); configs never change
        self._t0: Optional[float] = None
        self._done0 = 0.0
        self._thread = None
        import threading

        self._stop = threading.Event()

    # -- reading the database -------------------------------------------------------------
    def snapshot(self) -> dict:
        """Studies, trial counts by state, running trials per worker and the FLOPs done / left."""
        rows, studies, workers = self._read()
        self._cost_new(rows)
        by_state: dict[str, int] = {}
        done_flops = left_flops = 0.0
        per_study: dict[int, list] = {sid: [] for sid in studies}
        for r in rows:
            by_state[r.state] = by_state.get(r.state, 0) + 1
            total, fps = self._costs[r.trial_id]
            step = min(r.step or 0, total)
            done_flops += step * fps
            if r.state in OPEN_STATES:
                left_flops += (total - step) * fps
            per_study[r.study_id].append(r)
        n_done = 0
        for sid, (n_trials, _name) in studies.items():
            trials = per_study[sid]
            missing = max(0, n_trials - len(trials))  # asked later by the sampler (tpe, multi)
            if trials and missing:
                left_flops += missing * sum(self._costs[t.trial_id][0] * self._costs[t.trial_id][1] for t in trials) / len(trials)
            n_done += bool(trials) and not missing and not any(t.state in OPEN_STATES for t in trials)
        return {"studies": len(studies), "studies_done": n_done, "by_state": by_state, "done_flops": done_flops,
                "left_flops": left_flops, "workers": workers, "names": {sid: name for sid, (_, name) in studies.items()}}

    def _read(self):  # noqa: ANN202
        import sqlalchemy as sa

        from seqdb.db.engine import session_scope
        from seqdb.db.models import Metric, Study, Trial, Worker

        with session_scope(self.engine, write=False) as s:
            rows = s.execute(sa.select(Trial.trial_id, Trial.study_id, Trial.state, Trial.step)
                             .where(Trial.study_id.in_(self.study_ids))).all()
            studies = {r.study_id: (r.n_trials, r.name) for r in s.execute(
                sa.select(Study.study_id, Study.n_trials, Study.name).where(Study.study_id.in_(self.study_ids)))}
            running = s.execute(sa.select(Worker.worker_id, Worker.info, Worker.current_trial_id, Worker.tokens_per_s)
                                .where(Worker.state == "running").order_by(Worker.worker_id)).all()
            live_steps = dict(s.execute(  # the step a running trial reached (trial.step moves at checkpoints only)
                sa.select(Metric.trial_id, sa.func.max(Metric.step)).where(
                    Metric.trial_id.in_([r.trial_id for r in rows if r.state == "running"]), Metric.name == "train_loss")
                .group_by(Metric.trial_id)).all())
        rows = [_TrialRow(r.trial_id, r.study_id, r.state, max(r.step or 0, live_steps.get(r.trial_id) or 0)) for r in rows]
        mine = set(self.study_ids)
        trial_study = {r.trial_id: (r.study_id, r.step, r.state) for r in rows}
        workers = [w for w in running if set((w.info or {}).get("studies") or []) & mine or w.current_trial_id in trial_study]
        workers = [{"worker_id": w.worker_id, "label": (w.info or {}).get("label", ""), "trial_id": w.current_trial_id,
                    "study_id": trial_study.get(w.current_trial_id, (None,))[0], "tokens_per_s": w.tokens_per_s,
                    "step": trial_study.get(w.current_trial_id, (None, None))[1],
                    "busy": trial_study.get(w.current_trial_id, (None, None, None))[2] == "running"} for w in workers]
        return rows, studies, workers

    def _cost_new(self, rows) -> None:  # noqa: ANN001
        new = [r.trial_id for r in rows if r.trial_id not in self._costs]
        if not new:
            return
        import sqlalchemy as sa

        from seqdb.config.trial import TrialConfig
        from seqdb.db.engine import session_scope
        from seqdb.db.models import Dataset, Study, Trial
        from seqdb.search.plan import flops_per_step

        with session_scope(self.engine, write=False) as s:
            got = s.execute(sa.select(Trial.trial_id, Trial.config, Dataset.splits).join(Study, Study.study_id == Trial.study_id)
                            .outerjoin(Dataset, Dataset.dataset_id == Study.dataset_id).where(Trial.trial_id.in_(new))).all()
        for r in got:
            try:
                cfg = TrialConfig.model_validate(r.config)
            except ValueError:  # not a training config (a synthetic test trial): no cost known
                self._costs[r.trial_id] = (1, 0.0)
                continue
            n_windows = int(((r.splits or {}).get("train") or {}).get("windows") or 1)
            self._costs[r.trial_id] = (cfg.training.total_steps(n_windows), flops_per_step(cfg))

    # -- showing it -----------------------------------------------------------------------
    def eta(self, snap: dict, now: float) -> tuple[Optional[float], Optional[float]]:
        """(FLOP/s measured since the display started, seconds left), None until measurable."""
        if self._t0 is None:
            self._t0, self._done0 = now, snap["done_flops"]
            return None, None
        rate = (snap["done_flops"] - self._done0) / max(now - self._t0, 1e-9)
        if rate <= 0:
            return None, None
        return rate, snap["left_flops"] / rate

    def summary(self, snap: dict, now: float) -> str:
        rate, left = self.eta(snap, now)
        states = ", ".join(f"{n} {st}" for st, n in sorted(snap["by_state"].items())) or "no trials"
        speed = f"{rate / 1e9:.2f} GFLOP/s" if rate else "measuring"
        return (f"experiment {self.experiment}: studies {snap['studies_done']}/{snap['studies']} done · trials {states} · "
                f"{speed} · ETA {_fmt_eta(left)}" + (" (early stopping can make it shorter)" if left else ""))

    def render(self, snap: dict, now: float):  # noqa: ANN201
        from rich.console import Group
        from rich.table import Table

        table = Table(title=None, expand=False)
        for col in ("worker", "trial", "study", "step", "tok/s"):
            table.add_column(col, justify="right" if col in ("trial", "step", "tok/s") else "left")
        for w in snap["workers"]:
            table.add_row(f"{w['label']} ({w['worker_id']})", str(w["trial_id"]) if w["busy"] else "-",
                          snap["names"].get(w["study_id"], "-") if w["busy"] else "idle",
                          f"{w['step']}/{self._costs.get(w['trial_id'], (0,))[0]}" if w["busy"] else "-",
                          _fmt_rate(w["tokens_per_s"]) if w["busy"] else "-")
        return Group(self.summary(snap, now), table)

    # -- the thread -------------------------------------------------------------------------
    def start(self) -> "ExperimentProgress":
        import threading

        self._thread = threading.Thread(target=self._loop, name="seqdb-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        if not self.live:
            while not self._stop.wait(self.every_s):
                self._print_line()
            return
        from rich.live import Live

        with Live(console=self.console, refresh_per_second=1, transient=False) as live:
            while True:
                live.update(self._safe(lambda now: self.render(self.snapshot(), now)))
                if self._stop.wait(min(self.every_s, 2.0)):
                    live.update(self._safe(lambda now: self.render(self.snapshot(), now)))
                    return

    def line(self) -> str:
        """The summary line now (the display need not be running)."""
        return self._safe(lambda now: self.summary(self.snapshot(), now))

    def _print_line(self) -> None:
        self.console.print(self.line(), markup=False, highlight=False)

    def _safe(self, make):  # noqa: ANN001, ANN202
        """A display that cannot read the database right now says so instead of dying."""
        try:
            return make(time.monotonic())
        except Exception as exc:  # noqa: BLE001 - the display must never stop the workers
            return f"experiment {self.experiment}: progress unavailable ({type(exc).__name__})"
