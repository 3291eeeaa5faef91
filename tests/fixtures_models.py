"""Model-test helpers shared by test_models, test_decoding and test_checkpoint: every architecture
variant the smoke tests cover, and the ModelConfig fields a variant needs.

A variant is an arch name, or "concepts:input" for the concepts arch with the concept vector as an
extra input instead of the initial state ([1]'s ablation), so both modes run every smoke test.
"""

from __future__ import annotations

from vidcap_core.models import ARCH_NAMES

TEST_CONCEPTS = ["colour:red", "shape:circle", "size:small", "action:spin", "man"]
ARCH_VARIANTS: tuple[str, ...] = (*ARCH_NAMES, "concepts:input")


def arch_options(variant: str) -> dict:
    """ModelConfig keyword arguments of a variant: arch, and the concept vocabulary and mode of concepts."""
    arch, _, mode = variant.partition(":")
    if arch != "concepts":
        return {"arch": arch}
    return {"arch": arch, "concepts": list(TEST_CONCEPTS), "concept_mode": mode or "init"}
