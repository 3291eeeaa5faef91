"""`seeds`: the report's surveyed systems built on one recipe, on the same data and seeds (issue #13).

Configurations, every one on the main features with the profile's training recipe:
- `s2vt-lstm` and `attention-lstm`: the baselines (shared with the cells / attention suites by key);
- `concepts-lstm` and `concepts-lstm-input`: [1]'s visual concepts initialising the decoder, and the
  same concept head feeding the concepts as an extra input instead (--arch concepts --concept-mode);
- `attention-lstm-consistency`: [4] aLSTMs, attention plus the semantic-consistency loss with the
  profile's weight W (--semantic-consistency W);
- `attention-lstm-adversarial`: [2] LSTM-GAN, adversarial fine-tuning of attention-LSTM (--adversarial);
- `attention-lstm-scst` (reward CIDEr-D) and, on SynthClips, `attention-lstm-scst-semantic` (reward: the
  semantic checker's exact score): self-critical fine-tuning of the same attention-LSTM (--scst).

Which MLE model the fine-tunes start from: attention-LSTM, fixed, not "whichever wins". [2]'s
generator is an encoder-decoder LSTM and the attention decoder is this project's (report §4.3);
fixing the parent before anything trains keeps the invocation's plan and every cache key independent
of results (a winner picked after training would change the fine-tunes' keys whenever a seed moved),
and keeps each claim paired per seed: seed s's fine-tune against the seed-s run it started from.
The suite also records which configuration the benchmark's selection rule (benchmark.selection) would
pick among its MLE models, so a reader sees when that is not attention-LSTM.

Metrics: BLEU-4, METEOR, ROUGE-L, CIDEr-D, the semantic checker's slots (SynthClips) and the test
captions' diversity (vidcap_core.evaluation.diversity: distinct captions, distinct-1 / distinct-2, vocabulary
used), which the GAN claim needs. Diversity is one number per run, so it is compared per seed
(at least MIN_SEEDS seeds), like the other per-run quantities.
"""

from __future__ import annotations

import pandas as pd

from vidcap_core.evaluation.diversity import caption_diversity
from benchmark.figures import grouped_bars
from benchmark.runner import EvalRecord, RunSpec
from benchmark.selection import choose
from benchmark.suites.compare import compare_configs, compare_runs, metrics_for
from benchmark.suites.context import BenchContext
from benchmark.suites.groups import Trained, metric_values, rows_of, train_and_evaluate
from benchmark.suites.results import SuiteResult, figure_link
from benchmark.tables import fmt, markdown_table, per_seed, suite_summary

NAME = "seeds"
TITLE = "Surveyed systems: concepts [1], LSTM-GAN [2], aLSTMs semantic consistency [4], SCST, on one recipe"
S2VT = "s2vt-lstm"
ATTENTION = "attention-lstm"
CONCEPTS_INIT = "concepts-lstm"
CONCEPTS_INPUT = "concepts-lstm-input"
CONSISTENCY = "attention-lstm-consistency"
FINETUNE_PARENT = ATTENTION  # see the module docstring
ADVERSARIAL = f"{FINETUNE_PARENT}-adversarial"
SCST = f"{FINETUNE_PARENT}-scst"
SCST_SEMANTIC = f"{FINETUNE_PARENT}-scst-semantic"
MLE_LABELS = (S2VT, ATTENTION, CONCEPTS_INIT, CONCEPTS_INPUT, CONSISTENCY)
FINETUNE_LABELS = (ADVERSARIAL, SCST, SCST_SEMANTIC)
# (A, B): A is claimed better than B; every pair is compared on every caption metric (+ exact on SynthClips)
PAIRS = ((CONCEPTS_INIT, CONCEPTS_INPUT), (CONCEPTS_INIT, S2VT), (CONSISTENCY, ATTENTION),
         (ADVERSARIAL, ATTENTION), (SCST, ATTENTION), (SCST_SEMANTIC, ATTENTION))
DIVERSITY = ("distinct_captions", "distinct_1", "distinct_2", "vocabulary")  # columns of vidcap_core.evaluation.diversity
SLOTS = ("colour", "shape", "action", "direction", "order")  # the semantic checker's slots besides exact


def mle_groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    """The configurations trained from scratch, by label."""
    return {
        S2VT: ctx.grid("s2vt", "lstm"),
        ATTENTION: ctx.grid("attention", "lstm"),
        CONCEPTS_INIT: ctx.grid("concepts", "lstm", concept_mode="init"),
        CONCEPTS_INPUT: ctx.grid("concepts", "lstm", suffix="-input", concept_mode="input"),
        CONSISTENCY: ctx.grid("attention", "lstm", suffix="-consistency",
                              semantic_consistency=ctx.profile.consistency_weight),
    }


def groups(ctx: BenchContext) -> dict[str, list[RunSpec]]:
    """Every configuration of the suite: the MLE ones, then the fine-tunes of FINETUNE_PARENT, one per
    seed the fine-tune's label gets (`BenchContext.seeds_for`) among its parent's seeds."""
    out = mle_groups(ctx)
    parents = out[FINETUNE_PARENT]

    def finetunes(label: str, method: str, **options: object) -> list[RunSpec]:
        wanted = set(ctx.seeds_for(label))
        return [ctx.finetune_spec(p, method, label.removeprefix(FINETUNE_PARENT), **options)
                for p in parents if p.seed in wanted]

    out[ADVERSARIAL] = finetunes(ADVERSARIAL, "adversarial")
    out[SCST] = finetunes(SCST, "scst", reward="cider")
    if ctx.is_synth:  # the semantic checker needs SynthClips ground truth
        out[SCST_SEMANTIC] = finetunes(SCST_SEMANTIC, "scst", reward="semantic")
    return out


def plan(ctx: BenchContext) -> list[RunSpec]:
    return [spec for specs in groups(ctx).values() for spec in specs]


def diversity_of(evaluation: EvalRecord | None) -> dict[str, float]:
    """The diversity columns of one run's test captions (NaN without an evaluation)."""
    if evaluation is None:
        return {name: float("nan") for name in DIVERSITY}
    values = caption_diversity(evaluation.captions().values()).to_dict()
    return {name: float(values[name]) for name in DIVERSITY}


def diversity_by_seed(group: Trained, column: str) -> dict[int, float]:
    return {record.seed: diversity_of(evaluation)[column] for record, evaluation in zip(group.records, group.evals)}


def suite_rows(group: Trained) -> list[dict[str, object]]:
    """rows_of plus the diversity columns (distinct_captions: evaluation.diversity's, on tokens)."""
    return [{**row, **diversity_of(evaluation)} for row, evaluation in zip(rows_of(NAME, group), group.evals)]


def finetune_frame(trained: dict[str, Trained]) -> pd.DataFrame:
    """One row per fine-tune run: its parent run and whether each converged."""
    rows = []
    for label in FINETUNE_LABELS:
        for record in trained[label].records if label in trained else []:
            parent = record.parent or {}
            rows.append({"fine-tune": label, "seed": record.seed, "parent": parent.get("label", "n/a"),
                         "parent converged": "yes" if record.parent_converged else f"**no** ({parent.get('convergence', 'n/a')})",
                         "fine-tune converged": "yes" if record.converged else f"**no** ({record.convergence.get('reason', 'n/a')})",
                         "steps": fmt(record.result.get("steps_done")), "stopped by": record.result.get("stop_reason") or "n/a"})
    return pd.DataFrame(rows, columns=["fine-tune", "seed", "parent", "parent converged", "fine-tune converged", "steps",
                                       "stopped by"])


def selection_note(trained: dict[str, Trained]) -> str:
    """Which MLE configuration the benchmark's selection rule would pick, next to the fixed parent."""
    choice = choose({label: trained[label].records for label in MLE_LABELS})
    if choice is None:
        return f"No MLE configuration has a validated checkpoint; the fine-tunes start from {FINETUNE_PARENT} regardless."
    same = "the configuration the fine-tunes start from" if choice.label == FINETUNE_PARENT else (
        f"not {FINETUNE_PARENT}, which the fine-tunes start from (fixed before training: see benchmark/suites/seeds.py)")
    return f"Among this suite's MLE configurations the selection rule picks `{choice.label}` ({choice.describe()}): {same}."


def run(ctx: BenchContext) -> SuiteResult:
    trained = train_and_evaluate(ctx, NAME, groups(ctx))
    table = pd.DataFrame([row for group in trained.values() for row in suite_rows(group)])
    comparisons = {}
    for a, b in PAIRS:
        if a in trained and b in trained:
            comparisons.update(compare_configs(ctx, a, trained[a], b, trained[b], metrics_for(ctx)))
    for column in DIVERSITY:  # per-run numbers: paired by seed (a CI needs MIN_SEEDS seeds)
        a, b = trained[ADVERSARIAL], trained[FINETUNE_PARENT]
        comparisons.update(compare_runs(ctx, ADVERSARIAL, diversity_by_seed(a, column), FINETUNE_PARENT,
                                        diversity_by_seed(b, column), column, a.records, b.records))
    labels = list(trained)
    bars = grouped_bars(ctx.figures_dir / "seeds_test_metrics.png", labels,
                        {m: metric_values(trained, m) for m in ("CIDEr", "METEOR")},
                        "test score", "Surveyed systems: test CIDEr-D and METEOR (bars: mean, dots: seeds)")
    columns = ["CIDEr", "METEOR", "Bleu_4", "ROUGE_L"]
    columns += [f"sem_{slot}" for slot in ("exact", *SLOTS)] if ctx.is_synth else []
    columns += ["distinct_1", "distinct_2", "vocabulary", "val_exact", "val_CIDEr", "steps"]
    note = selection_note(trained)
    body = "\n\n".join([
        "Test-set scores (greedy), mean ± std over seeds. `concepts-lstm`: the concept vector initialises the "
        "decoder [1]; `-input`: the same concepts fed as an extra input; `-consistency`: attention with the "
        f"semantic-consistency loss, W = {ctx.profile.consistency_weight:g} [4]; `-adversarial`: LSTM-GAN fine-tuning "
        f"[2] and `-scst` / `-scst-semantic`: self-critical fine-tuning with CIDEr-D / the semantic checker's exact "
        f"score as reward, each starting from the same seed's `{FINETUNE_PARENT}` best.pt. Diversity of the test "
        "captions: `distinct_1` / `distinct_2` = distinct words / bigrams over all words / bigrams, `vocabulary` = "
        "words used (vidcap_core/evaluation/diversity.py). " + note,
        markdown_table(suite_summary(table, ["config"], columns)),
        "Fine-tunes and the runs they started from (a fine-tune of an unconverged parent is trained and shown, and "
        "its claims are not judged):",
        markdown_table(finetune_frame(trained)),
        markdown_table(per_seed(table, ["config"], "CIDEr")),
        figure_link(bars.name, "test metrics of the surveyed systems"),
    ])
    facts = {"finetune_parent": FINETUNE_PARENT, "consistency_weight": ctx.profile.consistency_weight,
             "selection_note": note}
    return SuiteResult(NAME, TITLE, table, body, figures=[bars.name], comparisons=comparisons, facts=facts)
