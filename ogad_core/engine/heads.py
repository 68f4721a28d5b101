"""The model's output layer ("head") and whether its closed-form gradient holds.

``params="last"`` means the weight and bias of the ``nn.Linear`` whose output the model
returns. It is found by execution order: a forward pass with hooks on every ``nn.Linear``
records the calls, and the head is the layer whose output tensor IS the model's output (else
the last ``nn.Linear`` that ran). The closed form ``(softmax(z) - onehot(y)) ⊗ [h, 1]`` holds
only when the head runs once, its weights are used nowhere else, and the model returns its
raw output; otherwise the exact ``torch.func`` path is used. A model that returns
probabilities (a final softmax) is refused: the loss is the cross-entropy of logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ogad_core.errors import ModelError

#: rows of non-negative outputs summing to 1 within this are probabilities, not logits
PROBABILITY_TOL = 1e-4


@dataclass(frozen=True)
class HeadTrace:
    """What one traced forward pass says about the head.

    Attributes:
        name: the head's qualified module name.
        module: the head.
        calls: how often the head ran in one forward pass.
        output_is_head: the model returned the head's output tensor itself.
        shared_with: other module names holding the head's weight or bias (tied weights).
        order: qualified names of the ``nn.Linear`` calls, in execution order.
    """

    name: str
    module: nn.Linear
    calls: int
    output_is_head: bool
    shared_with: tuple[str, ...] = ()
    order: tuple[str, ...] = field(default_factory=tuple)

    def closed_form_problem(self) -> str | None:
        """Why the closed form does not hold for this head, or None when it does."""
        if self.calls > 1:
            return f"the head {self.name} runs {self.calls} times per forward pass"
        if self.shared_with:
            return f"the head {self.name} shares its weights with {', '.join(self.shared_with)}"
        if not self.output_is_head:
            return f"the model transforms the output of its head {self.name}"
        return None


def _linear_names(model: nn.Module) -> dict[nn.Module, str]:
    names: dict[nn.Module, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, nn.Linear):
            names.setdefault(module, name)
    return names


def _shared_with(model: nn.Module, name: str, head: nn.Linear) -> tuple[str, ...]:
    """Names of parameters outside ``head`` that are the head's own weight or bias."""
    own = {id(p) for p in head.parameters(recurse=False)}
    return tuple(
        sorted(
            pname
            for pname, p in model.named_parameters(remove_duplicate=False)
            if id(p) in own and pname.rpartition(".")[0] != name
        )
    )


def trace_head(model: nn.Module, example: torch.Tensor) -> tuple[HeadTrace, torch.Tensor]:
    """Run ``model(example)`` (no grad) with hooks on every ``nn.Linear``.

    Args:
        example: a batch (B, ...) of model inputs on the model's device.
    Returns:
        (the head's trace, the model's output (B, C)).
    """
    names = _linear_names(model)
    if not names:
        raise ModelError(f"{type(model).__name__} has no nn.Linear layer for params='last'")
    calls: list[tuple[nn.Module, torch.Tensor]] = []

    def hook(module: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        calls.append((module, out))

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        with torch.no_grad():
            out = model(example)
    finally:
        for h in handles:
            h.remove()
    if not calls:
        raise ModelError(
            f"no nn.Linear of {type(model).__name__} runs in its forward pass; "
            "params='last' needs a linear output layer (use --params all or names)"
        )
    returned = [m for m, o in calls if o is out]
    head = returned[-1] if returned else calls[-1][0]
    name = names[head]
    trace = HeadTrace(
        name=name,
        module=head,
        calls=sum(1 for m, _ in calls if m is head),
        output_is_head=bool(returned) and returned[-1] is head,
        shared_with=_shared_with(model, name, head),
        order=tuple(names[m] for m, _ in calls),
    )
    return trace, out


def check_logits(out: torch.Tensor) -> None:
    """Refuse outputs that are probabilities (non-negative rows summing to 1).

    Args:
        out: the model's output (B, C) for a few samples.
    """
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] < 2:
        return
    z = out.detach().double()
    if bool((z >= 0).all()) and bool(((z.sum(dim=1) - 1).abs() < PROBABILITY_TOL).all()):
        raise ModelError(
            "the model returns probabilities (its output rows are >= 0 and sum to 1, e.g. a "
            "final Softmax); ogad's loss is the cross-entropy of logits: return the logits "
            "(or log-probabilities) instead"
        )


def find_head(model: nn.Module, example: torch.Tensor | None = None) -> tuple[str, nn.Linear]:
    """(qualified name, module) of the model's head: by execution order when ``example`` (a
    batch) is given, else the last ``nn.Linear`` in definition order."""
    if example is None:
        from ogad_core.engine.models import last_linear

        return last_linear(model)
    trace, out = trace_head(model, example)
    check_logits(out)
    return trace.name, trace.module


def first_batch(dataset, size: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``size`` (or fewer) samples of a map-style dataset as a batch (x, y)."""
    from torch.utils.data import DataLoader

    x, y = next(iter(DataLoader(dataset, batch_size=min(size, len(dataset)), shuffle=False)))
    return x, torch.as_tensor(y).long()


def _agrees(closed_rows: torch.Tensor, loop_rows: torch.Tensor) -> bool:
    """Whether closed-form rows (B, D) match the per-sample loop's (B, D)."""
    scale = max(1.0, float(loop_rows.abs().max()))
    return float((closed_rows - loop_rows).abs().max()) <= 1e-4 * scale


def last_layer_method(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str]
) -> tuple[str, nn.Linear | None]:
    """``closed`` when the closed form holds for the selected parameters ``names``, else
    ``vmap`` (exact ``torch.func``); also returns the head. Logs why the closed form is left.

    Args:
        x, y: a probe batch (B, ...) and its labels (B,) on the model's device.
    """
    from ogad_core._internal import log
    from ogad_core.engine.gradients import _last_layer_batch, loop_batch

    try:
        trace, _ = trace_head(model, x)
    except ModelError:  # no nn.Linear runs: only the autograd paths apply
        return "vmap", None
    head = trace.module
    head_params = [f"{trace.name}.{k}" for k, _ in head.named_parameters(recurse=False)]
    if names != head_params:
        return "vmap", head
    problem = trace.closed_form_problem()
    if problem is None:
        chosen = list(zip(head_params, head.parameters(recurse=False), strict=True))
        closed = _last_layer_batch(model, head, x, y)
        loop = torch.cat(loop_batch(model, chosen, x, y), dim=1)
        if not _agrees(closed, loop):
            problem = (
                f"the closed form disagrees with autograd for the head {trace.name} "
                "(its weights are probably used elsewhere in the model)"
            )
    if problem is None:
        return "closed", head
    log.info(f"gradients: {problem}; using exact per-sample autograd (torch.func)")
    return "vmap", head


def choose_method(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str], method: str = "auto"
) -> tuple[str, nn.Linear | None]:
    """The gradient path for ``method`` (``auto``: :func:`last_layer_method`), and the head.

    Refuses a model returning probabilities, and ``closed`` where the closed form does not hold.
    """
    from ogad_core.errors import ConfigError

    with torch.no_grad():
        check_logits(model(x))  # the loss is the cross-entropy of logits
    auto_mode, head = last_layer_method(model, x, y, names)
    if method == "closed" and auto_mode != "closed":
        raise ConfigError("method='closed' needs params='last' and a model returning its head")
    return (auto_mode if method == "auto" else method), head
