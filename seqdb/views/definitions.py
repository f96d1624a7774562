"""The seqdb views: named SQL over the live tables (documented in docs/views.md).

Two layers:
- schema `tables`: one view per seqdb table with the same columns, types made identical on
  SQLite and Postgres (BIGINT ids, TIMESTAMP in UTC, JSON configs, BOOLEAN flags);
- the public views below, written only against `tables.*`, so one SQL text serves both
  backends.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import sqlalchemy as sa
from sqlmodel import SQLModel

import seqdb.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from seqdb.db.models import TABLES

LIVE_WORKER_S = 120  # a running worker seen within this many seconds is alive (as `seqdb status`)


@dataclass(frozen=True)
class View:
    name: str
    description: str
    sql: str


def _duck_type(col: sa.Column) -> str:
    t = col.type
    if isinstance(t, sa.JSON):
        return "JSON"
    if isinstance(t, sa.DateTime):
        return "TIMESTAMP"
    if isinstance(t, sa.Boolean):
        return "BOOLEAN"
    if isinstance(t, sa.Integer):
        return "BIGINT"
    if isinstance(t, sa.Float):
        return "DOUBLE"
    return "VARCHAR"


def table_view_sql(table: str, backend: str) -> str:
    """`tables.<table>`: the live table with backend-independent column types."""
    source = f'db."{table}"' if backend == "sqlite" else f'db.public."{table}"'
    cols = SQLModel.metadata.tables[table].columns
    select = ", ".join(f'CAST("{c.name}" AS {_duck_type(c)}) AS "{c.name}"' for c in cols)
    return f"CREATE VIEW tables.{table} AS SELECT {select} FROM {source}"


# ------------------------------------------------------------------------------------------
# trials: one row per trial, the standalone config flattened into columns
# ------------------------------------------------------------------------------------------
def _cfg(path: str, typ: str) -> str:
    return f"TRY_CAST(json_extract_string(t.config, '$.{path}') AS {typ})"


def _batch(*keys: str) -> str:
    return "TRY_CAST(COALESCE(" + ", ".join(f"json_extract_string(t.batch_config, '$.{k}')" for k in keys) + ") AS BIGINT)"


def trials_select(param_count: str) -> str:
    """The select list of `trials` over trial rows `t` joined to study `s`, experiment `e`, budget `b`."""
    return f"""
t.trial_id, t.study_id, s.name AS study, e.name AS experiment, b.label AS budget,
       b.n_params AS budget_params, s.horizon, s.kind AS study_kind, s.strategy, t.number, t.state,
       t.label, t.attempt, {param_count} AS param_count, t.architecture_id,
       t.best_val_loss, t.best_step, t."values" AS objective_values, t.step, t.epochs_done,
       t.created_at, t.started_at, t.finished_at,
       epoch(COALESCE(t.finished_at, t.heartbeat_at)) - epoch(t.started_at) AS duration_s,
       {_cfg('model.d_model', 'BIGINT')} AS d_model, {_cfg('model.n_layers', 'BIGINT')} AS n_layers,
       {_cfg('model.n_head', 'BIGINT')} AS n_head,
       COALESCE({_cfg('model.n_kv_heads', 'BIGINT')}, {_cfg('model.n_head', 'BIGINT')}) AS n_kv_heads,
       {_cfg('model.d_ff', 'BIGINT')} AS d_ff, {_cfg('model.activation', 'VARCHAR')} AS activation,
       {_cfg('model.attention', 'VARCHAR')} AS attention, {_cfg('model.positional', 'VARCHAR')} AS positional,
       {_cfg('model.norm', 'VARCHAR')} AS norm, {_cfg('model.prenorm', 'BOOLEAN')} AS prenorm,
       {_cfg('model.dropout', 'DOUBLE')} AS dropout,
       {_cfg('training.learning_rate', 'DOUBLE')} AS learning_rate,
       {_cfg('training.weight_decay', 'DOUBLE')} AS weight_decay,
       {_cfg('training.scheduler', 'VARCHAR')} AS scheduler,
       {_cfg('training.warmup_steps', 'BIGINT')} AS warmup_steps,
       {_cfg('training.max_epochs', 'BIGINT')} AS max_epochs,
       {_cfg('data.context_length', 'BIGINT')} AS context_length, COALESCE(t.seed, {_cfg('seed', 'BIGINT')}) AS seed,
       t.replicate_of,
       COALESCE({_batch('effective_batch_size', 'effective')}, {_cfg('training.effective_batch_size', 'BIGINT')}) AS effective_batch_size,
       COALESCE({_batch('batch_size', 'physical_batch_size', 'physical')}, {_cfg('training.batch_size', 'BIGINT')}) AS batch_size,
       {_batch('accumulation', 'accumulation_steps', 'grad_accumulation')} AS accumulation,
       t.tokens, t.flops,
       t.config, t.params, t.batch_config, t.error"""


TRIALS = View(
    "trials",
    "One row per trial: study keys, state, losses, exact parameter count, timing, and the "
    "standalone config flattened into columns (model, training, data, batch).",
    f"""
SELECT {trials_select('COALESCE(t.param_count, a.param_count)')}
FROM tables.trial t
JOIN tables.study s ON s.study_id = t.study_id
JOIN tables.experiment e ON e.experiment_id = s.experiment_id
JOIN tables.budget b ON b.budget_id = s.budget_id
LEFT JOIN tables.architecture a ON a.architecture_id = t.architecture_id
""",
)

# ------------------------------------------------------------------------------------------
# study_progress: trial counts by state, progress and ETA per study
# ------------------------------------------------------------------------------------------
STUDY_PROGRESS = View(
    "study_progress",
    "One row per study (experiment x budget x horizon x kind): trial counts by state, "
    "progress against the target number of trials, best loss so far, live workers and an ETA.",
    f"""
WITH counts AS (
  SELECT study_id,
         count(*) FILTER (WHERE state = 'pending') AS pending,
         count(*) FILTER (WHERE state = 'running') AS running,
         count(*) FILTER (WHERE state = 'completed') AS completed,
         count(*) FILTER (WHERE state = 'pruned') AS pruned,
         count(*) FILTER (WHERE state = 'failed') AS failed,
         count(*) FILTER (WHERE state = 'stopped') AS stopped,
         count(*) AS total,
         min(best_val_loss) FILTER (WHERE state = 'completed') AS best_val_loss,
         min(started_at) AS first_started_at, max(finished_at) AS last_finished_at,
         avg(epoch(finished_at) - epoch(started_at))
           FILTER (WHERE state IN ('completed', 'pruned', 'failed')) AS mean_trial_s
  FROM tables.trial GROUP BY study_id),
live AS (
  SELECT study_id, count(*) AS live_workers FROM tables.worker
  WHERE state = 'running' AND epoch(current_timestamp) - epoch(last_seen_at) <= {LIVE_WORKER_S}
  GROUP BY study_id),
base AS (
  SELECT s.study_id, s.name AS study, e.name AS experiment, b.label AS budget, b.n_params AS budget_params,
         s.horizon, s.kind AS study_kind, s.strategy, s.state AS study_state, s.n_trials AS target_trials,
         COALESCE(c.pending, 0) AS pending, COALESCE(c.running, 0) AS running,
         COALESCE(c.completed, 0) AS completed, COALESCE(c.pruned, 0) AS pruned,
         COALESCE(c.failed, 0) AS failed, COALESCE(c.stopped, 0) AS stopped, COALESCE(c.total, 0) AS total,
         COALESCE(c.completed, 0) + COALESCE(c.pruned, 0) + COALESCE(c.failed, 0) AS finished,
         c.best_val_loss, c.first_started_at, c.last_finished_at, c.mean_trial_s,
         COALESCE(l.live_workers, 0) AS live_workers
  FROM tables.study s
  JOIN tables.experiment e ON e.experiment_id = s.experiment_id
  JOIN tables.budget b ON b.budget_id = s.budget_id
  LEFT JOIN counts c ON c.study_id = s.study_id
  LEFT JOIN live l ON l.study_id = s.study_id)
SELECT *, greatest(target_trials - finished, 0) AS remaining,
       CASE WHEN target_trials > 0 THEN least(finished / target_trials, 1.0) END AS progress,
       CASE WHEN finished >= target_trials THEN 0.0
            WHEN mean_trial_s IS NULL THEN NULL
            ELSE (target_trials - finished) * mean_trial_s / greatest(live_workers, running, 1) END AS eta_s
FROM base
""",
)

# ------------------------------------------------------------------------------------------
# scaling_points / best_trials: the best completed search trial per (experiment, budget, horizon)
# ------------------------------------------------------------------------------------------
# The per-study aggregation runs INSIDE the database (one fixed, seqdb-authored statement sent
# through the read-only attachment with sqlite_query / postgres_query; user SQL cannot call those
# functions, see guard.py). DuckDB's sqlite scanner does not push filters or aggregates down, and
# pulling every trial row through a scanner grows with the trial count; here the database scans
# its own trial table (SQLite: along ix_trial_study_state) and hands back one row per search study:
# the tuning effort, and every column of the best completed trial.
_EFFORT_COLS = ("n_finished", "n_completed", "epochs_total", "epochs_mean", "steps_total", "resolved_param_count")


def _trial_columns() -> list[sa.Column]:
    return list(SQLModel.metadata.tables["trial"].columns)


def best_search_inner_sql(backend: str) -> str:
    """The statement the database runs: one row per search study with a completed, scored trial."""
    finished = "state IN ('completed', 'pruned', 'failed')"
    search = "JOIN study s ON s.study_id = per.study_id AND s.kind = 'search'"  # after grouping: 1 row per study
    # seed replicates (trials with replicate_of) are not search trials: they never count as effort or
    # as the best, and their losses travel as one comma-separated text per replicated trial, in trial_id order.
    replicated = "replicate_of IS NOT NULL AND state = 'completed' AND best_val_loss IS NOT NULL"
    if backend == "sqlite":
        # bare columns next to exactly one min(): SQLite takes trial_id from the row holding the min.
        # Doubles travel as printf('%!.17g') text (sqlite_query hands back text): an exact round trip.
        exact = "CASE WHEN t.\"{0}\" IS NOT NULL THEN printf('%!.17g', t.\"{0}\") END AS \"{0}\""
        cols = ", ".join(exact.format(c.name) if isinstance(c.type, sa.Float) else f't."{c.name}"' for c in _trial_columns())
        return f"""
WITH per AS (
  SELECT study_id, count(*) AS n_finished, sum(state = 'completed') AS n_completed,
         sum(epochs_done) AS epochs_total, printf('%!.17g', avg(epochs_done)) AS epochs_mean, sum(step) AS steps_total,
         min(CASE WHEN state = 'completed' THEN best_val_loss END) AS min_loss, trial_id AS best_id
  FROM trial WHERE {finished} AND replicate_of IS NULL GROUP BY study_id),
rep AS (
  SELECT replicate_of AS rid, group_concat(printf('%!.17g', best_val_loss)) AS seed_losses
  FROM (SELECT replicate_of, best_val_loss FROM trial WHERE {replicated} ORDER BY trial_id) GROUP BY replicate_of)
SELECT per.n_finished, per.n_completed, per.epochs_total, per.epochs_mean, per.steps_total,
       COALESCE(t.param_count, a.param_count) AS resolved_param_count, rep.seed_losses, {cols}
FROM per {search} JOIN trial t ON t.trial_id = per.best_id LEFT JOIN architecture a ON a.architecture_id = t.architecture_id
LEFT JOIN rep ON rep.rid = t.trial_id
WHERE per.min_loss IS NOT NULL"""
    # Postgres: min over ARRAY[loss, id] is the (loss, then id) arg-min; ids < 2^53 are exact as float8.
    cols = ", ".join(f't."{c.name}"' for c in _trial_columns())
    return f"""
WITH per AS (
  SELECT study_id, count(*) AS n_finished, count(*) FILTER (WHERE state = 'completed') AS n_completed,
         sum(epochs_done) AS epochs_total, avg(epochs_done)::float8 AS epochs_mean, sum(step) AS steps_total,
         min(ARRAY[best_val_loss, trial_id::float8]) FILTER (WHERE state = 'completed' AND best_val_loss IS NOT NULL) AS best
  FROM trial WHERE {finished} AND replicate_of IS NULL GROUP BY study_id),
rep AS (
  SELECT replicate_of AS rid, string_agg(best_val_loss::text, ',' ORDER BY trial_id) AS seed_losses
  FROM trial WHERE {replicated} GROUP BY replicate_of)
SELECT per.n_finished, per.n_completed, per.epochs_total, per.epochs_mean, per.steps_total,
       COALESCE(t.param_count, a.param_count) AS resolved_param_count, rep.seed_losses, {cols}
FROM per {search} JOIN trial t ON t.trial_id = (per.best)[2]::bigint
LEFT JOIN architecture a ON a.architecture_id = t.architecture_id
LEFT JOIN rep ON rep.rid = t.trial_id"""


def best_search_view_sql(backend: str) -> str:
    """`seqdb_internal.best_search`: the inner statement's rows with the types of `tables.trial`."""
    func = "sqlite_query" if backend == "sqlite" else "postgres_query"
    inner = best_search_inner_sql(backend).replace("'", "''")
    casts = [f'CAST("{c}" AS {"DOUBLE" if c == "epochs_mean" else "BIGINT"}) AS "{c}"' for c in _EFFORT_COLS]
    casts += ['CAST(string_split("seed_losses", \',\') AS DOUBLE[]) AS "seed_losses"']
    casts += [f'CAST("{c.name}" AS {_duck_type(c)}) AS "{c.name}"' for c in _trial_columns()]
    return f"CREATE VIEW seqdb_internal.best_search AS SELECT {', '.join(casts)} FROM {func}('db', '{inner}')"


SCALING_POINTS = View(
    "scaling_points",
    "One row per (experiment, horizon, budget) with a completed search trial: the exact "
    "parameter count N and best validation loss L of the best trial, and the tuning effort "
    "spent on that budget (finished trials, epochs, steps) so an unfair comparison shows; "
    "seed replicates of the best trial (`seqdb replicate`) give n_seeds, every seed's loss, "
    "their geometric mean and the sd of log loss (NULL with one seed).",
    """
SELECT e.name AS experiment, s.horizon, b.label AS budget, b.n_params AS budget_params,
       t.resolved_param_count AS param_count, t.best_val_loss, t.trial_id,
       t.n_finished, t.n_completed, t.epochs_total, t.epochs_mean, t.steps_total, t.tokens, t.flops,
       1 + COALESCE(len(t.seed_losses), 0) AS n_seeds,
       list_prepend(t.best_val_loss, COALESCE(t.seed_losses, []::DOUBLE[])) AS seed_losses,
       exp(list_avg(list_transform(list_prepend(t.best_val_loss, COALESCE(t.seed_losses, []::DOUBLE[])), x -> ln(x)))) AS seed_loss_mean,
       list_stddev_samp(list_transform(list_prepend(t.best_val_loss, COALESCE(t.seed_losses, []::DOUBLE[])), x -> ln(x))) AS seed_log_loss_sd
FROM seqdb_internal.best_search t
JOIN tables.study s ON s.study_id = t.study_id
JOIN tables.experiment e ON e.experiment_id = s.experiment_id
JOIN tables.budget b ON b.budget_id = s.budget_id
""",
)

BEST_TRIALS = View(
    "best_trials",
    "The best completed search trial per (experiment, budget, horizon) with its exact "
    "parameter count, architecture, training parameters and batch configuration "
    "(all columns of `trials`, plus the effort columns of `scaling_points`).",
    f"""
SELECT {trials_select('t.resolved_param_count')},
       t.n_finished, t.n_completed, t.epochs_total, t.epochs_mean, t.steps_total
FROM seqdb_internal.best_search t
JOIN tables.study s ON s.study_id = t.study_id
JOIN tables.experiment e ON e.experiment_id = s.experiment_id
JOIN tables.budget b ON b.budget_id = s.budget_id
""",
)

# ------------------------------------------------------------------------------------------
# learning curves, checkpoints, workers
# ------------------------------------------------------------------------------------------
LEARNING_CURVES = View(
    "learning_curves",
    "Every metric row: one point of one trial's learning curve (train_loss, val_loss, lr ...), "
    "with the training tokens and FLOPs seen by that step (recorded at evaluation steps; NULL "
    "elsewhere). For one trial, `learning_curve(trial_id)` is the fast path on both backends.",
    """
SELECT m.trial_id, m.name AS metric, m.step, m.epoch, m.value, to_timestamp(m.time)::TIMESTAMP AS time,
       CAST(tk.value AS BIGINT) AS tokens, fl.value AS flops
FROM tables.metric m
LEFT JOIN tables.metric tk ON tk.trial_id = m.trial_id AND tk.step = m.step AND tk.name = 'tokens'
LEFT JOIN tables.metric fl ON fl.trial_id = m.trial_id AND fl.step = m.step AND fl.name = 'flops'
""",
)

# ------------------------------------------------------------------------------------------
# scaling_nd_points: every evaluation of a search trial as an (N, D, loss) point of L(N, D)
# ------------------------------------------------------------------------------------------
SCALING_ND_POINTS = View(
    "scaling_nd_points",
    "One row per (search trial, evaluation): parameter count N, training tokens D and FLOPs "
    "seen so far, and the validation loss there. `final` marks a completed trial's last "
    "evaluation, the points comparable across trials under a decaying (cosine/linear) "
    "schedule (docs/scaling.md); `seqdb scaling --law nd` fits the best final point per "
    "(budget, tokens).",
    """
SELECT e.name AS experiment, s.horizon, b.label AS budget, b.n_params AS budget_params, s.study_id,
       t.trial_id, t.number, t.state, COALESCE(t.param_count, a.param_count) AS param_count,
       v.step, v.epoch, CAST(tk.value AS BIGINT) AS tokens, fl.value AS flops, v.value AS val_loss,
       COALESCE(t.state = 'completed' AND v.step = t.step, false) AS final
FROM tables.metric v
JOIN tables.metric tk ON tk.trial_id = v.trial_id AND tk.step = v.step AND tk.name = 'tokens'
LEFT JOIN tables.metric fl ON fl.trial_id = v.trial_id AND fl.step = v.step AND fl.name = 'flops'
JOIN tables.trial t ON t.trial_id = v.trial_id
JOIN tables.study s ON s.study_id = t.study_id AND s.kind = 'search'
JOIN tables.experiment e ON e.experiment_id = s.experiment_id
JOIN tables.budget b ON b.budget_id = s.budget_id
LEFT JOIN tables.architecture a ON a.architecture_id = t.architecture_id
WHERE v.name = 'val_loss'
""",
)

CHECKPOINTS = View(
    "checkpoints",
    "Every saved checkpoint with its trial's study keys.",
    """
SELECT c.checkpoint_id, c.trial_id, t.study_id, t.number, c.step, c.epoch, c.val_loss, c.is_best,
       c.attempt, c.bytes, c.path, c.sha256, c.created_at
FROM tables.checkpoint c JOIN tables.trial t ON t.trial_id = c.trial_id
""",
)

WORKERS = View(
    "workers",
    f"Every `seqdb run` worker: heartbeat age, alive flag (running and seen within {LIVE_WORKER_S} s), "
    "the trial it is training and its throughput.",
    f"""
SELECT w.worker_id, w.name, w.host, w.pid, w.device, w.state, w.study_id, s.name AS study,
       w.current_trial_id, t.number AS current_trial_number, t.state AS current_trial_state,
       t.step AS current_trial_step, w.tokens_per_s, w.started_at, w.last_seen_at,
       epoch(current_timestamp) - epoch(w.last_seen_at) AS heartbeat_age_s,
       COALESCE(w.state = 'running' AND epoch(current_timestamp) - epoch(w.last_seen_at) <= {LIVE_WORKER_S}, false) AS alive
FROM tables.worker w
LEFT JOIN tables.study s ON s.study_id = w.study_id
LEFT JOIN tables.trial t ON t.trial_id = w.current_trial_id
""",
)

# ------------------------------------------------------------------------------------------
# multi-objective: objective values per trial, and the non-dominated set per study
# ------------------------------------------------------------------------------------------
TRIAL_OBJECTIVES = View(
    "trial_objectives",
    "One row per (trial, objective): the study's objective name and direction and the trial's value.",
    """
WITH so AS (
  SELECT study_id, from_json(objectives, '[{"name": "VARCHAR", "direction": "VARCHAR"}]') AS objs
  FROM tables.study),
tv AS (
  SELECT trial_id, study_id, number, state, from_json("values", '["DOUBLE"]') AS vals
  FROM tables.trial WHERE json_type("values") = 'ARRAY'),  -- JSON null on SQLite is the text 'null'
idx AS (
  SELECT tv.*, so.objs, unnest(generate_series(1, len(so.objs))) AS i FROM tv JOIN so USING (study_id))
SELECT trial_id, study_id, number, state, i - 1 AS objective_index, objs[i].name AS objective,
       COALESCE(objs[i].direction, 'minimize') AS direction, vals[i] AS value
FROM idx
""",
)

PARETO_FRONT = View(
    "pareto_front",
    "Per multi-objective study (two or more objectives), the completed trials that no other "
    "completed trial of the study dominates (no worse in every objective, better in one).",
    """
WITH multi AS (
  SELECT study_id, json_array_length(objectives) AS n_obj FROM tables.study
  WHERE json_array_length(objectives) >= 2),
o AS (
  SELECT o.trial_id, o.study_id, o.objective_index, o.objective, o.value,
         CASE WHEN o.direction = 'maximize' THEN -o.value ELSE o.value END AS loss
  FROM trial_objectives o JOIN multi m USING (study_id)
  WHERE o.state = 'completed' AND o.value IS NOT NULL AND NOT isnan(o.value)),
complete AS (  -- trials with a value for every objective
  SELECT o.trial_id FROM o JOIN multi m USING (study_id)
  GROUP BY o.trial_id, m.n_obj HAVING count(*) = m.n_obj),
oc AS (SELECT * FROM o WHERE trial_id IN (SELECT trial_id FROM complete)),
dominated AS (  -- a is dominated by b
  SELECT DISTINCT a.trial_id
  FROM oc a JOIN oc b ON a.study_id = b.study_id AND a.objective_index = b.objective_index
                     AND a.trial_id <> b.trial_id
  GROUP BY a.trial_id, b.trial_id
  HAVING bool_and(b.loss <= a.loss) AND bool_or(b.loss < a.loss)),
front AS (
  SELECT trial_id, study_id, list(objective ORDER BY objective_index) AS objectives,
         list(value ORDER BY objective_index) AS objective_values
  FROM oc WHERE trial_id NOT IN (SELECT trial_id FROM dominated)
  GROUP BY trial_id, study_id)
SELECT f.study_id, s.name AS study, e.name AS experiment, b.label AS budget, s.horizon, f.trial_id,
       t.number, COALESCE(t.param_count, a.param_count) AS param_count, t.best_val_loss,
       f.objectives, f.objective_values
FROM front f
JOIN tables.trial t ON t.trial_id = f.trial_id
JOIN tables.study s ON s.study_id = f.study_id
JOIN tables.experiment e ON e.experiment_id = s.experiment_id
JOIN tables.budget b ON b.budget_id = s.budget_id
LEFT JOIN tables.architecture a ON a.architecture_id = t.architecture_id
""",
)

VIEWS: list[View] = [
    TRIALS, STUDY_PROGRESS, SCALING_POINTS, BEST_TRIALS, LEARNING_CURVES, SCALING_ND_POINTS, CHECKPOINTS, WORKERS,
    TRIAL_OBJECTIVES, PARETO_FRONT,
]
VIEW_NAMES = [v.name for v in VIEWS]
TABLE_MACROS = ["learning_curve"]


def learning_curve_macro_sql(backend: str) -> str:
    """`learning_curve(trial_id)`: one trial's metric rows, fetched with an index lookup.

    DuckDB's sqlite scanner does not push WHERE filters into SQLite, so on SQLite the macro
    sends the filtered query to SQLite itself (through the read-only attachment; the id is
    cast to BIGINT, so nothing but a number reaches the SQL text). On Postgres the scanner
    pushes `trial_id = ?` down already. sqlite_query hands back text here, so the doubles
    travel as `printf('%!.17g')` (exact round trip) and are cast back.
    """
    cols = ("CAST(trial_id AS BIGINT) AS trial_id, CAST(metric AS VARCHAR) AS metric, CAST(step AS BIGINT) AS step, "
            "CAST(epoch AS BIGINT) AS epoch, CAST(value AS DOUBLE) AS value, to_timestamp(CAST(time AS DOUBLE))::TIMESTAMP AS time, "
            "CAST(CAST(tokens AS DOUBLE) AS BIGINT) AS tokens, CAST(flops AS DOUBLE) AS flops")
    # tokens / flops of the same step: two more lookups along uq_metric_trial_name_step
    axis = ("FROM metric m LEFT JOIN metric tk ON tk.trial_id = m.trial_id AND tk.step = m.step AND tk.name = ''tokens'' "
            "LEFT JOIN metric fl ON fl.trial_id = m.trial_id AND fl.step = m.step AND fl.name = ''flops'' ")
    if backend == "sqlite":
        inner = (
            "'SELECT m.trial_id, m.name AS metric, m.step, m.epoch, printf(''%!.17g'', m.value) AS value, "
            f"printf(''%!.17g'', m.time) AS time, printf(''%!.17g'', tk.value) AS tokens, printf(''%!.17g'', fl.value) AS flops {axis}"
            "WHERE m.trial_id = ' || CAST(tid AS BIGINT) || ' ORDER BY m.name, m.step'"
        )
        return f"CREATE MACRO learning_curve(tid) AS TABLE SELECT {cols} FROM sqlite_query('db', {inner})"
    inner = (
        f"'SELECT m.trial_id, m.name AS metric, m.step, m.epoch, m.value, m.time, tk.value AS tokens, fl.value AS flops {axis}"
        "WHERE m.trial_id = ' || CAST(tid AS BIGINT) || ' ORDER BY m.name, m.step'"
    )
    return f"CREATE MACRO learning_curve(tid) AS TABLE SELECT {cols} FROM postgres_query('db', {inner})"


def create_views(con: duckdb.DuckDBPyConnection, backend: str) -> None:
    """Create schema `tables`, the public views and the table macros on `con`."""
    con.execute("CREATE SCHEMA tables")
    for table in TABLES:
        con.execute(table_view_sql(table, backend))
    con.execute("CREATE SCHEMA seqdb_internal")
    con.execute(best_search_view_sql(backend))
    for view in VIEWS:
        con.execute(f"CREATE VIEW {view.name} AS {view.sql}")
    con.execute(learning_curve_macro_sql(backend))
