"""The report's claims, each tied to one comparison of one suite, and how each gets its verdict.

The cell and attention claims are judged twice on SynthClips: on the main features and on oracle
features (the ground-truth scene state), so a verdict can be told apart from what perception loses.
Each claim names the training configurations it compares (`configs`): the profile gives them `claim_seeds`
seeds (`claim_configurations`), so per-run claims have the seeds they need. Its `claim_seed_scope` says which:
"all" (every configuration a claim compares) or "per-run" (only those a per-run claim compares on the main
features; the others are compared by paired bootstraps over the test clips, which need one seed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from benchmark.stats import Better, Comparison, Verdict, verdict
from benchmark.suites.context import ORACLE_SUFFIX


@dataclass(frozen=True)
class Claim:
    id: str
    text: str  # what is claimed, quoted or paraphrased
    where: str  # where the report makes (or cites) it
    suite: str
    comparison: str  # key of the comparison in <suite>.json ("{A} vs {B}: {metric}")
    measured: str  # what the comparison measures, in words
    better: Better  # the claim says A is higher / lower than B
    delta: float  # smallest effect of interest: absolute, or a fraction of B's mean when `relative`
    relative: bool = False
    delta_reason: str = ""
    per_seed: bool = False  # a per-run quantity: bootstrapped over seeds, so it needs MIN_SEEDS seeds
    # False for a claim about training itself, where undertrained (even diverged) runs are the evidence
    needs_convergence: bool = True
    # The training configurations (run labels) the comparison reads; () for the beam claim, which reads the
    # best model's configuration (known after training: the beam suite gives it claim seeds itself).
    configs: tuple[str, ...] = ()

    def resolve_delta(self, comparison: Comparison | None) -> float:
        if not self.relative:
            return self.delta
        if comparison is None:
            return float("nan")
        return self.delta * abs(comparison.mean_b)


def beam_comparison(beam_json: dict[str, Any] | None) -> str:
    k = ((beam_json or {}).get("facts") or {}).get("claim_beam", 5)
    return f"beam 1 vs beam {k}: CIDEr"


BASE_CLAIMS: tuple[Claim, ...] = (
    Claim("lstm_vs_rnn", "“a significant improvement in our results when we used LSTM instead of a simple RNN”",
          "report §4.2", "cells", "s2vt-lstm vs s2vt-rnn: CIDEr", "test CIDEr-D, S2VT-LSTM − S2VT-RNN",
          "higher", 0.05, relative=True, delta_reason="5% of the RNN's score",
          configs=("s2vt-lstm", "s2vt-rnn")),
    Claim("vanishing", "plain RNNs suffer from vanishing gradients", "report §4.2.2", "gradients",
          "s2vt-lstm vs s2vt-rnn: log10_ratio_mean",
          "log10(‖dL/dx_first‖/‖dL/dx_last‖) averaged over training probes, LSTM − RNN (> 0: the RNN's early frames get less gradient)",
          "higher", 0.3, delta_reason="a factor of 2 in the ratio", per_seed=True,
          configs=("s2vt-lstm", "s2vt-rnn")),
    Claim("exploding", "plain RNNs suffer from exploding gradients", "report §4.2.2", "gradients",
          "s2vt-rnn-noclip vs s2vt-lstm-noclip: log10_grad_norm_max",
          "log10 of the largest pre-clip gradient norm with clipping off, RNN − LSTM (divergences listed in the gradients suite)",
          "higher", 0.3, delta_reason="a factor of 2 in the norm", per_seed=True, needs_convergence=False,
          configs=("s2vt-rnn-noclip", "s2vt-lstm-noclip")),
    Claim("attention_precise", "attention is “more precise”", "report §4.3", "attention",
          "attention-lstm vs s2vt-lstm: CIDEr", "test CIDEr-D, attention-LSTM − S2VT-LSTM",
          "higher", 0.05, relative=True, delta_reason="5% of S2VT's score",
          configs=("attention-lstm", "s2vt-lstm")),
    Claim("attention_faster", "attention is “significantly faster”", "report §4.3", "attention",
          "attention-lstm vs s2vt-lstm: s_to_95pct_val_CIDEr",
          "training seconds until validation CIDEr-D reaches 95% of its best, attention-LSTM − S2VT-LSTM",
          "lower", 0.10, relative=True, delta_reason="10% of S2VT's time", per_seed=True,
          configs=("attention-lstm", "s2vt-lstm")),
    Claim("attention_regions", "attention over the regions of each frame (the objects) beats attention over whole "
          "frames: spatio-temporal soft attention (SA-LSTM's extension to frame regions)",
          "vidcap's own question (issue #11: decoders named the wrong object's colour)", "attention",
          "attention-lstm-regions vs attention-lstm: CIDEr", "test CIDEr-D, attention-LSTM over regions − over frames",
          "higher", 0.05, relative=True, delta_reason="5% of frame attention's score",
          configs=("attention-lstm-regions", "attention-lstm")),
    Claim("frame_order", "frame order matters (S2VT's ablation: MSVD METEOR 29.2 ordered vs 28.2 shuffled)",
          "cited: Venugopalan et al. 2015 (S2VT)", "temporal",
          "s2vt-lstm ordered vs s2vt-lstm trained+tested shuffled: METEOR",
          "test METEOR, S2VT-LSTM on ordered frames − trained and tested on shuffled frames",
          "higher", 0.01, delta_reason="one METEOR point, S2VT's own gap",
          configs=("s2vt-lstm", "s2vt-lstm-trainshuffled")),
    Claim("beam_one", "“beam size one is better than larger beam sizes”", "report, literature survey (cited)", "beam",
          "beam 1 vs beam 5: CIDEr", "test CIDEr-D of the best model, beam 1 − beam 5",
          "higher", 0.05, relative=True, delta_reason="5% of the beam-5 score"),
    Claim("meanpool", "temporal models beat mean pooling (MSVD CIDEr 70.8 mean pool vs 74.4 temporal attention)",
          "cited: Venugopalan et al. 2015; xmodaler benchmarks", "temporal",
          "attention-lstm vs meanpool-lstm: CIDEr", "test CIDEr-D, attention-LSTM − mean-pool-LSTM",
          "higher", 0.05, relative=True, delta_reason="5% of mean pooling's score",
          configs=("attention-lstm", "meanpool-lstm")),
    # The surveyed systems of issue #13, on one recipe (the `seeds` suite).
    Claim("concepts_init", "[1] “using the classifier output features to initialise the LSTM and video features "
          "after the initialisation gives the best performance”: concepts initialising the LSTM beat concepts as input",
          "[1], cited in the report's survey", "seeds", "concepts-lstm vs concepts-lstm-input: CIDEr",
          "test CIDEr-D, concepts-LSTM (init) − concepts-LSTM (input)",
          "higher", 0.05, relative=True, delta_reason="5% of the input variant's score",
          configs=("concepts-lstm", "concepts-lstm-input")),
    Claim("concepts_vs_s2vt", "[1] concept initialisation beats the S2VT baseline", "[1], cited in the report's survey",
          "seeds", "concepts-lstm vs s2vt-lstm: CIDEr", "test CIDEr-D, concepts-LSTM (init) − S2VT-LSTM",
          "higher", 0.05, relative=True, delta_reason="5% of S2VT's score",
          configs=("concepts-lstm", "s2vt-lstm")),
    Claim("gan_quality", "[2] LSTM-GAN: adversarial fine-tuning improves caption quality over its MLE generator",
          "[2], cited in the report's survey", "seeds", "attention-lstm-adversarial vs attention-lstm: CIDEr",
          "test CIDEr-D, adversarially fine-tuned attention-LSTM − the attention-LSTM it started from",
          "higher", 0.05, relative=True, delta_reason="5% of the MLE generator's score",
          configs=("attention-lstm-adversarial", "attention-lstm")),
    Claim("gan_quality_meteor", "[2] LSTM-GAN: adversarial fine-tuning improves caption quality (METEOR)",
          "[2], cited in the report's survey", "seeds", "attention-lstm-adversarial vs attention-lstm: METEOR",
          "test METEOR, adversarially fine-tuned attention-LSTM − the attention-LSTM it started from",
          "higher", 0.01, delta_reason="one METEOR point",
          configs=("attention-lstm-adversarial", "attention-lstm")),
    Claim("gan_diversity", "[2] LSTM-GAN: adversarial fine-tuning makes captions more diverse",
          "[2], cited in the report's survey", "seeds", "attention-lstm-adversarial vs attention-lstm: distinct_2",
          "distinct bigrams / bigrams of the test captions, adversarial fine-tune − its MLE generator",
          "higher", 0.05, relative=True, delta_reason="5% of the MLE generator's ratio", per_seed=True,
          configs=("attention-lstm-adversarial", "attention-lstm")),
    Claim("consistency_meteor", "[4] aLSTMs: the semantic-consistency loss improves METEOR over attention",
          "[4], cited in the report's survey", "seeds", "attention-lstm-consistency vs attention-lstm: METEOR",
          "test METEOR, attention-LSTM + semantic consistency − attention-LSTM",
          "higher", 0.01, delta_reason="one METEOR point",
          configs=("attention-lstm-consistency", "attention-lstm")),
    Claim("consistency_bleu", "[4] aLSTMs: the semantic-consistency loss improves BLEU-4 over attention",
          "[4], cited in the report's survey", "seeds", "attention-lstm-consistency vs attention-lstm: Bleu_4",
          "test BLEU-4, attention-LSTM + semantic consistency − attention-LSTM",
          "higher", 0.05, relative=True, delta_reason="5% of attention's score",
          configs=("attention-lstm-consistency", "attention-lstm")),
    Claim("scst_cider", "self-critical sequence training improves CIDEr-D over its MLE start",
          "cited: Rennie et al. 2017 (SCST)", "seeds", "attention-lstm-scst vs attention-lstm: CIDEr",
          "test CIDEr-D, SCST fine-tune (reward CIDEr-D) − the attention-LSTM it started from",
          "higher", 0.05, relative=True, delta_reason="5% of the MLE model's score",
          configs=("attention-lstm-scst", "attention-lstm")),
)


ORACLE_SUITES = ("cells", "attention")  # suites whose claims are also judged with oracle features
ORACLE_ID_SUFFIX = "_oracle"  # the id of a claim judged again on oracle features


def with_oracle_features(claim: Claim) -> Claim:
    """The same claim judged on the configurations trained on oracle features."""
    pair, metric = claim.comparison.split(": ", 1)
    a, b = pair.split(" vs ", 1)
    return replace(claim, id=f"{claim.id}{ORACLE_ID_SUFFIX}", text=f"{claim.text}, with oracle features",
                   comparison=f"{a}{ORACLE_SUFFIX} vs {b}{ORACLE_SUFFIX}: {metric}",
                   measured=f"{claim.measured}, both on oracle features (perfect perception)",
                   configs=tuple(f"{config}{ORACLE_SUFFIX}" for config in claim.configs))


# Each oracle row right after the claim it repeats.
CLAIMS: tuple[Claim, ...] = tuple(
    judged for claim in BASE_CLAIMS
    for judged in ((claim, with_oracle_features(claim)) if claim.suite in ORACLE_SUITES else (claim,))
)


CLAIM_SEED_SCOPES = ("all", "per-run")


def claim_configurations(claims: tuple[Claim, ...] = CLAIMS, scope: str = "all") -> frozenset[str]:
    """The training configurations (run labels) that get the profile's claim seeds: every one some claim
    compares ("all"), or only those a per-run claim compares, on the main and on oracle features ("per-run":
    the claims bootstrapped over seeds, which have no CI with fewer than MIN_SEEDS)."""
    if scope not in CLAIM_SEED_SCOPES:
        raise ValueError(f"unknown claim seed scope {scope!r}: choose one of {', '.join(CLAIM_SEED_SCOPES)}")
    chosen = [claim for claim in claims if scope == "all" or claim.per_seed]
    return frozenset(config for claim in chosen for config in claim.configs)


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    comparison: Comparison | None
    verdict: Verdict
    delta: float


def judge(claim: Claim, suites: dict[str, dict[str, Any]]) -> ClaimResult:
    """The claim's verdict from the comparisons stored in `<suite>.json` (missing suite: not measured)."""
    suite = suites.get(claim.suite)
    key = beam_comparison(suite) if claim.id == "beam_one" else claim.comparison
    stored = ((suite or {}).get("comparisons") or {}).get(key)
    comparison = Comparison.from_dict(stored) if stored else None
    delta = claim.resolve_delta(comparison)
    result = verdict(comparison, claim.better, delta if delta == delta else 0.0, claim.needs_convergence)
    return ClaimResult(claim, comparison, result, delta)
