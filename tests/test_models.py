"""Caption models: config, cells, shapes, gradients, overfitting, step equivalence, masks, attention."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from fixtures_models import ARCH_VARIANTS, arch_options

from vidcap_core.errors import ConfigError, FeatureError
from vidcap_core.models import (
    append_frame_deltas,
    ARCH_NAMES,
    ARCHITECTURES,
    BOS_ID,
    CELL_NAMES,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    CaptionModel,
    ModelConfig,
    Recurrent,
    SoftAttention,
    build_model,
    cell_class,
    masked_nll,
)

B, T, F, V, H, E, R, L = 3, 6, 16, 20, 16, 12, 4, 7
ALL = [(arch, cell) for arch in ARCH_VARIANTS for cell in CELL_NAMES]  # + "concepts:input" (fixtures_models)
DELTAS = [0.0, 10.0]  # ModelConfig.frame_deltas: off (frame features only), and the recipe's scale


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """np.testing on tensors: torch.testing would import torch.distributed and sympy (seconds of CPU)."""
    np.testing.assert_allclose(
        torch.as_tensor(actual).detach().double().numpy(), torch.as_tensor(expected).detach().double().numpy(), rtol=rtol, atol=atol
    )


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_model(arch: str, cell: str, seed: int = 0, **overrides) -> CaptionModel:
    """`arch` is an arch variant (fixtures_models.ARCH_VARIANTS)."""
    torch.manual_seed(seed)
    options = dict(embed_size=E, hidden_size=H, attention_size=8, dropout=0.3, max_tokens=8, **arch_options(arch))
    options.update(overrides)
    return build_model(ModelConfig(cell=cell, feature_dim=F, vocab_size=V, **options))


def tiny_batch(seed: int = 1, regions: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """feats (B, T, F) or (B, T, R, F); clip 1 has only 4 real frames; captions of different lengths."""
    g = torch.Generator().manual_seed(seed)
    shape = (B, T, F) if regions is None else (B, T, regions, F)
    feats = torch.randn(shape, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 4:] = False
    captions = torch.randint(4, V, (B, L), generator=g)
    captions[:, 0] = BOS_ID
    for i, n in enumerate([L - 1, 4, 5]):  # EOS at position n, then padding
        captions[i, n] = EOS_ID
        captions[i, n + 1 :] = PAD_ID
    return feats, mask, captions


def scored(captions: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: the teacher-forced positions whose input is not PAD, the ones anything reads; teacher
    forcing may leave the others out (models/step_plan.py)."""
    steps = (captions != PAD_ID).sum(1, keepdim=True)  # (B, 1)
    return torch.arange(captions.size(1)).unsqueeze(0) < steps


def step_by_step(model: CaptionModel, feats, mask, captions):
    memory = model.encode(feats, mask)
    state = model.init_state(memory)
    logits, alphas = [], []
    for t in range(captions.size(1)):
        step_logits, state, alpha = model.step(captions[:, t], state, memory)
        logits.append(step_logits)
        alphas.append(alpha)
    return torch.stack(logits, 1), (None if alphas[0] is None else torch.stack(alphas, 1))


# -- config and cells ---------------------------------------------------------------------


def test_special_ids_match_the_vocabulary_when_it_exists():
    text = pytest.importorskip("vidcap_core.text")
    vocab_class = getattr(text, "Vocabulary", None)
    if vocab_class is None:
        pytest.skip("vidcap_core.text.Vocabulary is not written yet")
    assert (vocab_class.PAD, vocab_class.BOS, vocab_class.EOS, vocab_class.UNK) == (PAD_ID, BOS_ID, EOS_ID, UNK_ID)


def test_config_round_trips_through_asdict():
    cfg = ModelConfig(arch="attention", cell="gru", feature_dim=512, vocab_size=100, num_layers=2)
    assert ModelConfig.from_dict(dataclasses.asdict(cfg)) == cfg
    assert cfg.to_dict() == dataclasses.asdict(cfg)


@pytest.mark.parametrize(
    ("field", "value", "listed"),
    [
        ("arch", "transformer", "meanpool, s2vt, attention, concepts"),
        ("cell", "lstmm", "lstm, gru, rnn"),
        ("hidden_size", 0, "positive"),
        ("dropout", 1.5, "[0, 1)"),
        ("vocab_size", 3, "special tokens"),
    ],
)
def test_config_validation_names_the_valid_values(field, value, listed):
    cfg = ModelConfig(arch="s2vt", cell="lstm", feature_dim=8, vocab_size=10)
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(cfg, **{field: value}).validate()
    assert listed in str(info.value) and str(value) in str(info.value)


def test_config_from_dict_rejects_unknown_and_missing_keys():
    good = ModelConfig(arch="s2vt", cell="lstm", feature_dim=8, vocab_size=10).to_dict()
    with pytest.raises(ConfigError, match="unknown model config keys.*'colour'"):
        ModelConfig.from_dict({**good, "colour": "red"})
    del good["feature_dim"]
    with pytest.raises(ConfigError, match="incomplete"):
        ModelConfig.from_dict(good)


def test_cell_lookup_and_unknown_cell():
    assert cell_class("lstm") is torch.nn.LSTM and cell_class("gru") is torch.nn.GRU
    assert cell_class("rnn") is torch.nn.RNN
    with pytest.raises(ConfigError, match="'transformer'.*lstm, gru, rnn"):
        cell_class("transformer")
    with pytest.raises(ConfigError, match="lstm, gru, rnn"):
        Recurrent("elman", 4, 4, 1, 0.0)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_recurrent_state_shapes(cell):
    rnn = Recurrent(cell, input_size=5, hidden_size=7, num_layers=2, dropout=0.0)
    state = rnn.zero_state(3)
    tensors = state if cell == "lstm" else (state,)
    assert len(tensors) == (2 if cell == "lstm" else 1)
    assert all(t.shape == (2, 3, 7) for t in tensors)
    out, new_state = rnn.step(torch.randn(3, 5), state)
    assert out.shape == (3, 7) and torch.equal(rnn.top_hidden(new_state), out)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("how", ["sequence", "steps"])
def test_recurrent_computes_what_the_torch_layer_computes(cell, how):
    """Recurrent over a whole sequence (GRU and RNN: recurrence.run_sequence) and step by step
    (recurrence.cell_step) computes what nn.LSTM / nn.GRU / nn.RNN compute on the same weights: outputs,
    final state and every gradient (float64, two layers)."""
    torch.manual_seed(0)
    rnn = Recurrent(cell, input_size=5, hidden_size=7, num_layers=2, dropout=0.0).double()
    x = torch.randn(3, 6, 5, dtype=torch.float64, requires_grad=True)
    start = rnn.zero_state(3)
    start = tuple(torch.randn_like(s) for s in start) if cell == "lstm" else torch.randn_like(start)
    theirs, theirs_state = rnn.rnn(x, start)
    if how == "sequence":
        ours, state = rnn(x, start)
    else:
        state, outputs = start, []
        for t in range(6):
            out, state = rnn.step(x[:, t], state)
            outputs.append(out)
        ours = torch.stack(outputs, 1)  # (B, S, H)
    flat_theirs = [theirs, *(theirs_state if cell == "lstm" else (theirs_state,))]
    flat_ours = [ours, *(state if cell == "lstm" else (state,))]
    for a, b in zip(flat_ours, flat_theirs):
        assert_close(a, b, rtol=1e-10, atol=1e-12)
    weights = [torch.randn_like(t) for t in flat_ours]
    inputs = [x, *rnn.parameters()]
    grads_ours = torch.autograd.grad(sum((t * w).sum() for t, w in zip(flat_ours, weights)), inputs)
    grads_theirs = torch.autograd.grad(sum((t * w).sum() for t, w in zip(flat_theirs, weights)), inputs)
    for a, b in zip(grads_ours, grads_theirs):
        assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("regions", [None, R])
@pytest.mark.parametrize("padded", [False, True])
def test_fused_attention_decoder_gradients_equal_the_step_loop(cell, regions, padded):
    """The attention decoder's teacher-forced loop written out as one autograd operation
    (attention_decoder.py) gives the loss and every parameter's gradient that autograd gives through
    the loop of `step()` (float64, one layer, dropout off)."""
    model = tiny_model("attention", cell, num_layers=1, frame_deltas=10.0).double().eval()
    feats, mask, captions = tiny_batch(regions=regions)
    if not padded:
        mask = torch.ones_like(mask)
    feats = feats.double()
    targets = captions[:, 1:]

    positions = scored(captions)

    def loss_and_grads(logits, alphas):
        loss = masked_nll(logits[:, :-1], targets) + alphas[positions].square().sum()  # the weights' path too
        return loss, torch.autograd.grad(loss, list(model.parameters()))

    fused_loss, fused = loss_and_grads(*model(feats, mask, captions))
    loop_loss, loop = loss_and_grads(*step_by_step(model, feats, mask, captions))
    assert_close(fused_loss, loop_loss, rtol=1e-10, atol=1e-12)
    for (name, _), a, b in zip(model.named_parameters(), fused, loop):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("regions", [None, R])
def test_attention_teacher_forcing_draws_the_step_loops_dropout(cell, regions):
    """In training mode, with dropout on, the fused teacher-forced attention decoder draws the dropout noise
    the loop of `step()` draws, in its order (models/attention.py `_step_loop_dropout`): from one seed both
    give the same logits on every scored position and leave the random stream in the same place."""
    model = tiny_model("attention", cell, num_layers=1).train()
    feats, mask, captions = tiny_batch(regions=regions)
    torch.manual_seed(5)
    logits, _ = model(feats, mask, captions)
    after_fused = torch.rand(1)
    torch.manual_seed(5)
    ref_logits, _ = step_by_step(model, feats, mask, captions)
    after_loop = torch.rand(1)
    positions = scored(captions)
    assert_close(logits[positions], ref_logits[positions], rtol=1e-5, atol=1e-5)
    assert torch.equal(after_fused, after_loop)


def test_registry_covers_every_arch():
    assert set(ARCHITECTURES) == set(ARCH_NAMES)
    for arch in ARCH_NAMES:
        assert isinstance(tiny_model(arch, "gru"), ARCHITECTURES[arch])


# -- smoke over every arch x cell ----------------------------------------------------------


@pytest.mark.parametrize(("arch", "cell"), ALL)
@pytest.mark.parametrize("regions", [None, R])
@pytest.mark.parametrize("deltas", DELTAS)
def test_output_shapes(arch, cell, regions, deltas):
    model = tiny_model(arch, cell, frame_deltas=deltas)
    assert model.config.input_dim == (2 * F if deltas else F)
    feats, mask, captions = tiny_batch(regions=regions)
    logits, alphas = model(feats, mask, captions)
    assert logits.shape == (B, L, V)
    if arch == "attention":
        assert alphas.shape == (B, L, T * (regions or 1))
    else:
        assert alphas is None


@pytest.mark.parametrize(("arch", "cell"), ALL)
@pytest.mark.parametrize("deltas", DELTAS)
def test_finite_loss_and_gradients_reach_every_parameter(arch, cell, deltas):
    model = tiny_model(arch, cell, num_layers=2, frame_deltas=deltas).train()
    feats, mask, captions = tiny_batch()
    logits, _ = model(feats, mask, captions)
    loss = masked_nll(logits[:, :-1], captions[:, 1:])
    assert torch.isfinite(loss)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize(("arch", "cell"), ALL)
def test_one_batch_overfits(arch, cell):
    model = tiny_model(arch, cell, dropout=0.0).train()
    feats, mask, captions = tiny_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    losses: list[float] = []
    for _ in range(150):  # about 30 steps are needed; stop as soon as the loss is below 10 %
        logits, _ = model(feats, mask, captions)
        loss = masked_nll(logits[:, :-1], captions[:, 1:])
        losses.append(loss.item())
        if losses[-1] < 0.1 * losses[0]:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < 0.1 * losses[0], f"loss {losses[0]:.3f} -> {losses[-1]:.3f} after {len(losses)} steps"


@pytest.mark.parametrize(("arch", "cell"), ALL)
@pytest.mark.parametrize("regions", [None, R])
@pytest.mark.parametrize("deltas", DELTAS)
@pytest.mark.parametrize("layers", [1, 2])
def test_teacher_forcing_equals_step_by_step(arch, cell, regions, deltas, layers):
    model = tiny_model(arch, cell, num_layers=layers, frame_deltas=deltas).eval()
    feats, mask, captions = tiny_batch(regions=regions)
    with torch.no_grad():
        logits, alphas = model(feats, mask, captions)
        ref_logits, ref_alphas = step_by_step(model, feats, mask, captions)
    positions = scored(captions)
    assert_close(logits[positions], ref_logits[positions], rtol=1e-5, atol=1e-5)
    if alphas is not None:
        assert_close(alphas[positions], ref_alphas[positions], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("arch", "cell"), ALL)
def test_scheduled_sampling_feeds_back_the_argmax(arch, cell):
    model = tiny_model(arch, cell).eval()
    feats, mask, captions = tiny_batch()
    with torch.no_grad():
        logits, _ = model(feats, mask, captions, sampling_prob=1.0)
        memory = model.encode(feats, mask)
        state = model.init_state(memory)
        tokens, expected = captions[:, 0], []
        for _ in range(L):
            step_logits, state, _ = model.step(tokens, state, memory)
            expected.append(step_logits)
            tokens = step_logits.argmax(-1)
        assert_close(logits, torch.stack(expected, 1), rtol=1e-5, atol=1e-5)
        runs = [model(feats, mask, captions, 0.5, torch.Generator().manual_seed(7))[0] for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


# -- masks, attention, frame order ---------------------------------------------------------


@pytest.mark.parametrize(("arch", "cell"), ALL)
@pytest.mark.parametrize("deltas", DELTAS)
def test_padded_frames_do_not_change_the_output(arch, cell, deltas):
    model = tiny_model(arch, cell, num_layers=2, frame_deltas=deltas).eval()
    feats, mask, captions = tiny_batch()
    noisy = feats.clone()
    noisy[1, 4:] = 100.0 * torch.randn(T - 4, F)
    with torch.no_grad():
        logits, _ = model(feats, mask, captions)
        noisy_logits, _ = model(noisy, mask, captions)
        alone, _ = model(feats[1:2, :4], None, captions[1:2])  # the clip by itself, real frames only
    positions = scored(captions)
    assert_close(logits[positions], noisy_logits[positions], rtol=1e-5, atol=1e-5)
    assert_close(logits[1:2][positions[1:2]], alone[positions[1:2]], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("regions", [None, R])
def test_attention_weights_sum_to_one_and_are_zero_on_padding(cell, regions):
    model = tiny_model("attention", cell).eval()
    feats, mask, captions = tiny_batch(regions=regions)
    with torch.no_grad():
        _, alphas = model(feats, mask, captions)  # (B, L, N)
    per_frame = regions or 1
    positions = scored(captions)  # steps whose input is PAD are not computed: their weights are 0
    assert_close(alphas.sum(-1), positions.double())
    assert torch.all(alphas[1, :, 4 * per_frame :] == 0.0)  # clip 1: frames 4, 5 are padding
    assert torch.all(alphas[1, positions[1], : 4 * per_frame] > 0.0)
    assert torch.all(alphas[0, positions[0]] > 0.0)


def test_soft_attention_returns_context_as_weighted_sum():
    torch.manual_seed(0)
    attention = SoftAttention(memory_dim=5, query_dim=3, attention_size=4)
    memory = torch.randn(2, 6, 5)
    mask = torch.tensor([[True] * 6, [True] * 2 + [False] * 4])
    context, alpha = attention(torch.randn(2, 3), memory, attention.project(memory), mask)
    assert context.shape == (2, 5) and alpha.shape == (2, 6)
    assert_close(context, (alpha.unsqueeze(-1) * memory).sum(1))
    assert torch.all(alpha[1, 2:] == 0.0)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_meanpool_ignores_frame_order_and_s2vt_does_not(cell):
    feats, _, captions = tiny_batch()
    order = torch.tensor([5, 3, 0, 4, 1, 2])
    for arch, invariant in [("meanpool", True), ("s2vt", False)]:
        model = tiny_model(arch, cell).eval()
        with torch.no_grad():
            logits, _ = model(feats, None, captions)
            shuffled, _ = model(feats[:, order], None, captions)
        assert torch.allclose(logits, shuffled, atol=1e-5) == invariant, arch


@pytest.mark.parametrize(("arch", "cell"), ALL)
def test_expand_and_select_reorder_the_batch(arch, cell):
    model = tiny_model(arch, cell, num_layers=2).eval()
    feats, mask, captions = tiny_batch()
    with torch.no_grad():
        memory = model.encode(feats, mask)
        state = model.init_state(memory)
        logits, _, _ = model.step(captions[:, 0], state, memory)
        big_memory, big_state = model.expand(memory, state, 2)
        big_logits, big_state, _ = model.step(captions[:, 0].repeat_interleave(2), big_state, big_memory)
        assert_close(big_logits, logits.repeat_interleave(2, dim=0))
        order = torch.tensor([5, 0, 2])
        picked_logits, _, _ = model.step(
            captions[order // 2, 1], model.select(big_state, order), model.select(big_memory, order)
        )
        _, state, _ = model.step(captions[:, 0], state, memory)
        ref_logits, _, _ = model.step(captions[order // 2, 1], model.select(state, order // 2), model.select(memory, order // 2))
    assert_close(picked_logits, ref_logits)


def test_models_follow_the_input_dtype():
    model = tiny_model("attention", "lstm").double().eval()
    feats, mask, captions = tiny_batch()
    logits, alphas = model(feats.double(), mask, captions)
    assert logits.dtype == torch.float64 and alphas.dtype == torch.float64


# -- bad input -----------------------------------------------------------------------------


def test_bad_features_and_masks_raise_feature_error():
    model = tiny_model("s2vt", "lstm")
    feats, mask, _ = tiny_batch()
    with pytest.raises(FeatureError, match="expects 16-d features, got 9-d"):
        model.encode(torch.randn(B, T, 9), mask)
    with pytest.raises(FeatureError, match=r"\(B, T, F\)"):
        model.encode(torch.randn(B, F), None)
    holes = mask.clone()
    holes[0, 2] = False
    with pytest.raises(FeatureError, match="prefix"):
        model.encode(feats, holes)
    empty = mask.clone()
    empty[2] = False
    with pytest.raises(FeatureError, match=r"\[2\] have no valid frame"):
        model.encode(feats, empty)
    with pytest.raises(FeatureError, match="bool tensor"):
        model.encode(feats, mask.long())


# -- loss ----------------------------------------------------------------------------------


def test_masked_nll_is_the_mean_over_real_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 6)
    targets = torch.tensor([[4, 5, EOS_ID, PAD_ID], [3, EOS_ID, PAD_ID, PAD_ID]])
    logprobs = torch.log_softmax(logits, -1)
    picked = [-logprobs[b, t, targets[b, t]] for b in range(2) for t in range(4) if targets[b, t] != PAD_ID]
    assert_close(masked_nll(logits, targets), torch.stack(picked).mean())
    assert masked_nll(logits, torch.zeros_like(targets)).item() == 0.0


# -- frame deltas (ModelConfig.frame_deltas) ------------------------------------------------


def test_frame_deltas_by_hand_on_a_masked_batch():
    # clip 0: 3 real frames; clip 1: 2 real frames, then padding holding junk that must not leak
    feats = torch.tensor([[[1.0, 0.0], [3.0, 1.0], [4.0, 5.0]],
                          [[2.0, 2.0], [1.0, 4.0], [99.0, -99.0]]])  # (B=2, T=3, F=2)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    expected_deltas = torch.tensor([[[0.0, 0.0], [20.0, 10.0], [10.0, 40.0]],
                                    [[0.0, 0.0], [-10.0, 20.0], [0.0, 0.0]]])  # 10 x (x_t - x_{t-1}); first, padded: 0
    out = append_frame_deltas(feats, mask, 10.0)
    assert out.shape == (2, 3, 4)
    assert torch.equal(out[..., :2], feats) and torch.equal(out[..., 2:], expected_deltas)
    grid = torch.stack([feats, -feats], dim=2)  # (B, T, R=2, F): deltas per region
    out_grid = append_frame_deltas(grid, mask, 10.0)
    assert out_grid.shape == (2, 3, 2, 4)
    assert torch.equal(out_grid[:, :, 0], out) and torch.equal(out_grid[:, :, 1, 2:], -expected_deltas)


@pytest.mark.parametrize("arch", ARCH_VARIANTS)
def test_the_layers_read_the_frame_deltas(arch):
    """With the x_t half of every first-layer projection zeroed, a model with frame deltas still tells a
    moving clip from a still one, and cannot tell two still clips apart (their deltas are all 0)."""
    feats, mask, captions = tiny_batch()
    model = tiny_model(arch, "gru", frame_deltas=10.0).eval()
    with torch.no_grad():
        first_layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.in_features == 2 * F]
        assert first_layers, "no layer reads the (B, T, 2F) input"
        for layer in first_layers:
            layer.weight[:, :F].zero_()  # (out, 2F): only the deltas half is left
        still = feats[:, :1].expand_as(feats)  # every frame is the clip's first: all deltas 0
        moving, frozen = model(feats, mask, captions)[0], model(still, mask, captions)[0]
        assert not torch.allclose(moving, frozen)
        assert_close(frozen, model(still + 3.0, mask, captions)[0])


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf"), True, "10"])
def test_frame_deltas_validation(value):
    cfg = ModelConfig(arch="s2vt", cell="lstm", feature_dim=8, vocab_size=10)
    with pytest.raises(ConfigError, match="frame_deltas"):
        dataclasses.replace(cfg, frame_deltas=value).validate()


def test_old_config_dicts_without_frame_deltas_load_with_zero():
    cfg = ModelConfig(arch="attention", cell="lstm", feature_dim=8, vocab_size=10, frame_deltas=10.0)
    old = cfg.to_dict()
    del old["frame_deltas"]
    loaded = ModelConfig.from_dict(old)
    assert loaded.frame_deltas == 0.0 and loaded.input_dim == 8
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg and cfg.input_dim == 16
