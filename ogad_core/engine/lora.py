"""A LoRA-adapted encoder + head (:func:`build_lora_classifier`) with its tokenizer
(:func:`tokenize`) for gradients w.r.t. the adapters."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ogad_core.engine.text_encoder import (
    DEFAULT_ENCODER,
    _any_loaded_encoder,
    check_texts,
    token_lengths,
)
from ogad_core.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import torch
    from torch import nn


# ---- LoRA fine-tuning -----------------------------------------------------------------------

_LORA_TARGETS = (("query", "value"), ("q_lin", "v_lin"), ("q_proj", "v_proj"), ("q", "v"))


def lora_param_patterns() -> list[str]:
    """fnmatch globs selecting the LoRA adapter parameters of :func:`build_lora_classifier`."""
    return ["*.lora_A.*", "*.lora_B.*"]


def lora_adapter_names(model: nn.Module) -> set[str]:
    """Names of ``model``'s parameters selected by :func:`lora_param_patterns`."""
    patterns = lora_param_patterns()
    return {
        n
        for n, _ in model.named_parameters()
        if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)
    }


def _lora_targets(backbone: nn.Module) -> list[str]:
    from torch import nn

    leaves = {
        name.rpartition(".")[2] for name, m in backbone.named_modules() if isinstance(m, nn.Linear)
    }
    for pair in _LORA_TARGETS:
        if set(pair) <= leaves:
            return list(pair)
    raise ModelError(
        f"no attention query/value projections found for LoRA in {type(backbone).__name__}"
    )


def _make_lora_classifier_class():
    import torch
    from torch import nn

    class LoraTextClassifier(nn.Module):
        """Encoder (with LoRA adapters) -> masked mean pooling -> L2 normalise -> head.

        ``forward(input_ids (B, L) int64) -> logits (B, C)``; the attention mask is
        ``input_ids != pad_id``. ``head`` is the last nn.Linear.
        """

        def __init__(
            self, *, backbone: nn.Module, pad_id: int, n_classes: int, hidden: int
        ) -> None:
            super().__init__()
            self.backbone = backbone
            self.pad_id = int(pad_id)
            config: Any = backbone.config
            dim = int(config.hidden_size)
            self.body = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
            self.head = nn.Linear(hidden, n_classes)

        def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
            """(B, L) token ids -> (B, E) unit-norm sentence embeddings."""
            mask = input_ids != self.pad_id
            # A ready 4-D additive mask: transformers uses it as is, with no data-dependent
            # branch on it, so torch.func.vmap can trace the forward pass.
            bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
            bias = bias.masked_fill(~mask, torch.finfo(torch.float32).min)
            length = input_ids.shape[-1]
            bias = bias[:, None, None, :].expand(-1, 1, length, length)
            tokens = self.backbone(input_ids=input_ids, attention_mask=bias).last_hidden_state
            m = mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
            return nn.functional.normalize(pooled, dim=-1)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(self.embed(input_ids)))

    return LoraTextClassifier


def build_lora_classifier(
    *,
    encoder: str | None = DEFAULT_ENCODER,
    n_classes: int,
    r: int = 8,
    seed: int = 0,
    hidden: int = 256,
    alpha: float | None = None,
) -> nn.Module:
    """The encoder with LoRA adapters (rank ``r``) on its attention query/value projections,
    masked mean pooling, and an MLP head (E -> hidden -> n_classes, the built-in text head).

    Only the adapters and the head require grad. Parameter names of the adapters match
    :func:`lora_param_patterns`. ``forward(input_ids (B, L)) -> logits (B, n_classes)``.
    """
    import copy

    import torch

    if n_classes < 2:
        raise ConfigError(f"n_classes must be >= 2, got {n_classes}")
    if r < 1:
        raise ConfigError(f"LoRA rank must be >= 1, got {r}")
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise ModelError("finetune='lora' needs peft: pip install 'ogad[lora]'") from None
    st = _any_loaded_encoder(encoder)
    auto_model = getattr(st[0], "auto_model", None)
    if auto_model is None or not hasattr(auto_model, "config"):
        raise ModelError(f"text encoder {encoder!r} has no transformer for LoRA")
    pad_id = st.tokenizer.pad_token_id
    if pad_id is None:
        raise ModelError(f"text encoder {encoder!r}: its tokenizer has no padding token")
    backbone = copy.deepcopy(auto_model).cpu().float()
    # Eager attention: under torch.func.vmap, SDPA on CPU has no batching rule (a slow
    # per-sample fallback); eager attention is ~10x faster there and identical in value.
    if hasattr(backbone, "set_attn_implementation"):
        backbone.set_attn_implementation("eager")
    else:
        backbone.config._attn_implementation = "eager"
    config = LoraConfig(
        r=r,
        lora_alpha=alpha if alpha is not None else 2 * r,  # type: ignore[arg-type]
        lora_dropout=0.0,
        target_modules=_lora_targets(backbone),
        bias="none",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = inject_adapter_in_model(config, backbone)
        model = _make_lora_classifier_class()(
            backbone=backbone, pad_id=pad_id, n_classes=n_classes, hidden=hidden
        )
    adapters = lora_adapter_names(model)
    for name, p in model.named_parameters():
        p.requires_grad_(name in adapters or name.startswith(("body.", "head.")))
    return model


def tokenize(
    texts: Sequence[str], *, encoder: str | None = DEFAULT_ENCODER, max_length: int = 128
) -> tuple[torch.Tensor, np.ndarray]:
    """Token ids for :func:`build_lora_classifier`, padded to the longest (<= max_length).

    Returns:
        input_ids (N, L) int64 (pad = the tokenizer's pad id) and truncated (N,) bool.
    """
    import torch

    texts = check_texts(texts)
    if max_length < 4:
        raise ConfigError(f"max_length must be >= 4, got {max_length}")
    tok = _any_loaded_encoder(encoder).tokenizer
    lengths = token_lengths(texts, tok)
    enc = tok(
        texts,
        add_special_tokens=True,
        truncation=True,
        max_length=max_length,
        padding="longest",
        return_tensors="pt",
    )
    return enc["input_ids"].to(torch.long), lengths > max_length
