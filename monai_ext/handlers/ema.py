# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""An exponential-moving-average (EMA, "mean teacher") copy of the trained network, as an ignite handler.

The EMA network is updated after every optimizer step and, when asked, runs a no-grad forward on each training
batch and writes its logits into ``engine.state.output["memory_logits"]``, where
:class:`monai_ext.engines.PerSampleTrainer` hands them to a loss whose ``forward`` takes ``memory_logits``
(:class:`monai_ext.losses.NVUMLoss` in official mode). The official NVUM code (github FBLADL/NVUM, ``train.py``,
``WeightEMA``, decay 0.99) feeds its memory from such a teacher and evaluates the EMA network.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.data import MetaTensor
from monai.engines.utils import IterationEvents
from monai.utils import look_up_option
from monai.utils.enums import CommonKeys as Keys
from monai.utils.enums import StrEnum

__all__ = ["EMABufferMode", "TeacherMode", "EMATeacher"]


class EMABufferMode(StrEnum):
    """How the EMA network's buffers (BatchNorm running statistics) follow the trained network's.

    - ``copy``: copied after every step (default).
    - ``ema``: floating-point buffers averaged like the parameters (the official ``WeightEMA.step``, ``train.py``
      l. 359-371 at ``86d431d``, averages every ``state_dict`` entry); integer buffers (``num_batches_tracked``) are
      copied in both modes.
    """

    COPY = "copy"
    EMA = "ema"


class TeacherMode(StrEnum):
    """Mode of the EMA network during the teacher forward.

    - ``eval``: BatchNorm uses (and leaves untouched) its running statistics, dropout is off (default).
    - ``train``: BatchNorm normalises with batch statistics and updates its running statistics, as the official code
      (``net_ema.train()`` in ``train.py`` l. 229 at its HEAD, commit ``86d431d``).
    """

    EVAL = "eval"
    TRAIN = "train"


def _unwrap(network: torch.nn.Module) -> torch.nn.Module:
    if isinstance(network, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
        return network.module
    return network


class EMATeacher:
    """EMA copy of a network: ``theta_ema <- decay * theta_ema + (1 - decay) * theta`` after every optimizer step.

    - **Initialisation**: at the first ``ITERATION_STARTED`` (after any ``CheckpointLoader`` has run at ``STARTED``),
      parameters and buffers are copied from ``network``, unless a checkpoint of this handler was loaded.
    - **Update**: a post-step hook on the optimizer, so the EMA follows real steps only (none while gradients
      accumulate, none when amp's ``GradScaler`` skips a step). Buffers: see :class:`EMABufferMode`.
    - **Teacher logits**: with ``output_key`` set (default ``"memory_logits"``), at
      ``IterationEvents.FORWARD_COMPLETED`` the EMA network runs on ``engine.state.output["image"]`` through
      ``engine.inferer`` under ``torch.no_grad()`` (and under amp's autocast when the trainer uses amp) and the
      detached ``B C`` logits are written to ``engine.state.output[output_key]``;
      :class:`monai_ext.engines.PerSampleTrainer` passes them to the loss's ``memory_logits`` parameter. This costs
      one extra no-grad forward per step.
    - **Evaluation**: the EMA network (``ema_network``) is the model to evaluate; make it the evaluator's network
      (:meth:`evaluation_network` picks the EMA or the trained network from one flag).
    - **Checkpoints**: ``state_dict()`` holds the EMA network's weights and the update count, so put the handler into
      ``CheckpointSaver``'s ``save_dict``.

    Bundle wiring (``train.json``)::

        "ema_teacher": {"_target_": "monai_ext.handlers.EMATeacher", "network": "@network", "decay": 0.99,
                        "output_key": "$monai_ext.losses.memory_logits_key(@loss)"},
        "train": {"handlers": [..., {"_target_": "@ema_teacher", "_mode_": "callable"}],
                  "trainer": {"_target_": "monai_ext.engines.PerSampleTrainer", "loss_function": "@loss", ...}},
        "validate": {"network": "$@ema_teacher.evaluation_network(@evaluate_with_ema)",
                     "evaluator": {"_target_": "SupervisedEvaluator", "network": "@validate#network", ...}},
        checkpoint "save_dict": {"model": "@network", "ema": "@ema_teacher", "nvum": "@loss", "optimizer": ...}

    Under ``torchrun`` attach it on every rank (the teacher forward is local; the loss gathers the logits); give it
    the ``DistributedDataParallel`` network or its ``.module`` (it unwraps either).

    Args:
        network: the trained network (``torch.nn.DataParallel``/``DistributedDataParallel`` are unwrapped).
        ema_network: module with the same architecture that holds the EMA; ``None`` (default) makes a deep copy of
            ``network``. Its parameters are set to ``requires_grad=False``.
        decay: EMA decay in [0, 1), default 0.99 (official ``WeightEMA`` alpha).
        output_key: where the teacher logits go in ``engine.state.output``, default ``"memory_logits"``; ``None``
            skips the teacher forward (EMA for evaluation only).
        buffer_mode: ``{"copy", "ema"}``, see :class:`EMABufferMode`; default ``"copy"``.
        teacher_mode: ``{"eval", "train"}``, see :class:`TeacherMode`; default ``"eval"``.
        optimizer: whose steps trigger the update; ``None`` (default) takes ``engine.optimizer`` at ``attach``.
        name: logger name; ``None`` uses ``engine.logger``.

    Raises:
        ValueError: ``decay`` out of range, an unknown option, or networks whose parameter/buffer names or shapes
            differ.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        ema_network: torch.nn.Module | None = None,
        decay: float = 0.99,
        output_key: str | None = "memory_logits",
        buffer_mode: EMABufferMode | str = EMABufferMode.COPY,
        teacher_mode: TeacherMode | str = TeacherMode.EVAL,
        optimizer: torch.optim.Optimizer | None = None,
        name: str | None = None,
    ) -> None:
        if not 0.0 <= float(decay) < 1.0:
            raise ValueError(f"decay must lie in [0, 1), got {decay}.")
        self.network = _unwrap(network)
        self.ema_network = _unwrap(ema_network) if ema_network is not None else copy.deepcopy(self.network)
        self.ema_network.requires_grad_(False)
        self.decay = float(decay)
        self.output_key = None if output_key is None else str(output_key)
        self.buffer_mode = look_up_option(buffer_mode, EMABufferMode)
        self.teacher_mode = look_up_option(teacher_mode, TeacherMode)
        self.optimizer = optimizer
        self.num_updates = 0
        self.initialised = False
        self.logger = logging.getLogger(name)
        self._name = name
        self._hooked: set[int] = set()
        self._check_same_structure()

    def _check_same_structure(self) -> None:
        for what, a, b in (
            ("parameters", self.network.named_parameters(), self.ema_network.named_parameters()),
            ("buffers", self.network.named_buffers(), self.ema_network.named_buffers()),
        ):
            shapes_a = {k: tuple(v.shape) for k, v in a}
            shapes_b = {k: tuple(v.shape) for k, v in b}
            if shapes_a != shapes_b:
                diff = sorted(set(shapes_a.items()) ^ set(shapes_b.items()))[:5]
                raise ValueError(
                    f"network and ema_network {what} differ (first differences: {diff}); build ema_network from the "
                    "same network definition (e.g. '%network_def'), or leave it None to deep-copy network."
                )

    # ---- ignite --------------------------------------------------------------------------------------------------

    def attach(self, engine: Engine) -> None:
        """Initialise at the first ``ITERATION_STARTED``, update after each step of the optimizer, and (with
        ``output_key``) write the teacher logits at ``IterationEvents.FORWARD_COMPLETED``.

        The optimizer is ``optimizer`` or else ``engine.optimizer``, looked up at ``STARTED`` (a MONAI trainer sets
        it after attaching its ``train_handlers``).

        Args:
            engine: a MONAI trainer (``PerSampleTrainer``, ``SupervisedTrainer``).
        """
        if self._name is None:
            self.logger = engine.logger
        if self.optimizer is not None:
            self._hook(self.optimizer)
        elif not engine.has_event_handler(self._on_started, Events.STARTED):
            engine.add_event_handler(Events.STARTED, self._on_started)
        if not engine.has_event_handler(self._on_iteration_started, Events.ITERATION_STARTED):
            engine.add_event_handler(Events.ITERATION_STARTED, self._on_iteration_started)
        if self.output_key is not None and not engine.has_event_handler(self, IterationEvents.FORWARD_COMPLETED):
            engine.add_event_handler(IterationEvents.FORWARD_COMPLETED, self)

    def _hook(self, optimizer: torch.optim.Optimizer) -> None:
        if id(optimizer) not in self._hooked:
            optimizer.register_step_post_hook(self._after_step)
            self._hooked.add(id(optimizer))

    def _on_started(self, engine: Engine) -> None:
        optimizer = getattr(engine, "optimizer", None)
        if optimizer is None:
            raise ValueError(
                "EMATeacher updates after every optimizer step: pass optimizer= or attach it to a MONAI trainer "
                "(engine.optimizer)."
            )
        self._hook(optimizer)

    def __call__(self, engine: Engine) -> None:
        """Run the EMA network on the batch and put its detached logits into ``engine.state.output[output_key]``.

        Raises:
            KeyError: the output holds no ``"image"``.
        """
        output = engine.state.output
        if not isinstance(output, Mapping) or Keys.IMAGE not in output:
            raise KeyError(f"EMATeacher needs engine.state.output['{Keys.IMAGE}'] at FORWARD_COMPLETED.")
        output[self.output_key] = self.predict(output[Keys.IMAGE], getattr(engine, "inferer", None))

    def _on_iteration_started(self, engine: Engine) -> None:
        if not self.initialised:
            self.reset()

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.update()

    # ---- EMA -----------------------------------------------------------------------------------------------------

    def evaluation_network(self, use_ema: bool = True) -> torch.nn.Module:
        """The network to evaluate and save as the bundle's model: the EMA network when ``use_ema`` (default), else
        the trained network (unwrapped from ``DataParallel``/``DistributedDataParallel`` either way)."""
        return self.ema_network if use_ema else self.network

    def predict(self, inputs: torch.Tensor, inferer: Any = None) -> torch.Tensor:
        """Teacher logits for ``inputs``, detached, computed without gradients in ``teacher_mode``.

        Args:
            inputs: network input, e.g. ``B 3 H W`` images.
            inferer: a MONAI inferer called as ``inferer(inputs, network)``; ``None`` calls the network directly.

        Returns:
            the EMA network's output as a plain tensor (``B C`` logits for a classifier).
        """
        if not self.initialised:
            self.reset()
        was_training = self.ema_network.training
        self.ema_network.train(self.teacher_mode == TeacherMode.TRAIN)
        try:
            with torch.no_grad():
                out = inferer(inputs, self.ema_network) if inferer is not None else self.ema_network(inputs)
        finally:
            self.ema_network.train(was_training)
        if isinstance(out, MetaTensor):
            out = out.as_tensor()
        return out.detach()

    def reset(self) -> None:
        """Copy every parameter and buffer of ``network`` into ``ema_network`` (the update count restarts at 0)."""
        with torch.no_grad():
            self.ema_network.load_state_dict(self.network.state_dict())
        self.num_updates = 0
        self.initialised = True

    def update(self) -> None:
        """One EMA step: parameters ``decay * ema + (1 - decay) * current``; buffers as ``buffer_mode`` says."""
        if not self.initialised:
            self.reset()
        d = self.decay
        with torch.no_grad():
            current = dict(self.network.named_parameters())
            for key, ema_p in self.ema_network.named_parameters():
                ema_p.mul_(d).add_(current[key].detach().to(ema_p.dtype), alpha=1.0 - d)
            current_b = dict(self.network.named_buffers())
            for key, ema_b in self.ema_network.named_buffers():
                src = current_b[key].detach()
                if self.buffer_mode == EMABufferMode.EMA and ema_b.is_floating_point():
                    ema_b.mul_(d).add_(src.to(ema_b.dtype), alpha=1.0 - d)
                else:
                    ema_b.copy_(src)
        self.num_updates += 1

    # ---- checkpoints -----------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``{"ema_network": weights, "num_updates": 0-d int64 tensor}``; readable with ``weights_only=True``."""
        return {
            "ema_network": self.ema_network.state_dict(),
            "num_updates": torch.tensor(self.num_updates, dtype=torch.long),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the EMA network and the update count; the handler then counts as initialised (no copy at start).

        Raises:
            KeyError: an entry is missing.
            RuntimeError: the saved weights do not fit ``ema_network`` (``torch.nn.Module.load_state_dict``).
        """
        missing = [k for k in ("ema_network", "num_updates") if k not in state_dict]
        if missing:
            raise KeyError(
                f"EMATeacher state_dict misses {missing}; found {sorted(state_dict)}. A checkpoint of the bare EMA "
                "network loads into ema_network directly, not into the handler."
            )
        self.ema_network.load_state_dict(state_dict["ema_network"])
        self.num_updates = int(torch.as_tensor(state_dict["num_updates"]))
        self.initialised = True
