"""A ResNet-101 convolutional autoencoder in TorchXRayVision's layer layout ("101-elastic").

TorchXRayVision publishes one autoencoder (``ResNetAE(weights="101-elastic")``), trained
on its pooled chest datasets, and uses its latent code as a general-purpose film
representation. Its weight file is a state dict whose keys name the module tree
directly (``conv1``, ``layer3.22.bn2``, ``uplayer2.0.conv3``, ``uplayer_top.upsample.0``,
``conv1_1``), so this module keeps exactly that tree and those block internals, and the
published file converts without renaming. Two quirks of that layout are kept on purpose
because the weights were trained with them: each residual block applies its ReLU *before*
adding the shortcut as well as after, and the last encoder stage uses stride 6, so a
224 px film becomes a 512 x 3 x 3 latent code (4,608 numbers).

The contract is TorchXRayVision's: one channel, 224 px, pixels in [-1024, 1024]. The
decoder's strides only return to 224 px from a 3 x 3 code, so other sizes are refused
instead of silently reconstructing an image of the wrong shape.

``small_resnet_ae`` is the same tree with 2 blocks per stage and a quarter of the channels
(a 128 x 3 x 3 latent, 0.35 M parameters): small enough to train with ``cxr train`` on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InvalidArgument, Unavailable
from ._registry import register_model
from .base import CxrModel

__all__ = ["ResNetAE", "resnet101_ae", "small_resnet_ae", "checkpoint_filter_fn", "AE_INPUT_SIZE"]

#: The only input size the encoder/decoder strides round-trip.
AE_INPUT_SIZE = 224


def _conv_bn(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels))


class _Block(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual block with a ReLU before and after the shortcut sum.

    ``up=True`` makes the strided 3x3 a transposed convolution (the decoder's blocks).
    ``shortcut`` (a conv + BatchNorm) is registered under ``name`` ("downsample" in the
    encoder, "upsample" in the decoder), which is the key the published file uses.
    """

    def __init__(self, cin: int, width: int, expansion: int, stride: int = 1, *, up: bool = False,
                 shortcut: nn.Module | None = None, name: str = "downsample"):
        super().__init__()
        cout = width * expansion
        self.conv1 = nn.Conv2d(cin, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2: nn.Conv2d | nn.ConvTranspose2d
        if up and stride != 1:
            self.conv2 = nn.ConvTranspose2d(width, width, kernel_size=3, stride=stride, padding=1,
                                            output_padding=1, bias=False)
        else:
            self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self._shortcut_name = name
        setattr(self, name, shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.relu(self.bn3(self.conv3(out)))
        shortcut = getattr(self, self._shortcut_name)
        return self.relu(out + (x if shortcut is None else shortcut(x)))


class ResNetAE(CxrModel):
    """ResNet encoder (3-4-23-2 bottlenecks for the 101 layout) and a mirrored transposed-conv decoder.

    ``encode`` gives the latent map, ``decode`` the image, ``forward`` the reconstruction;
    ``forward_features`` is the latent map and ``forward_head(..., pre_logits=True)`` pools
    it to a 512-d vector, as for the classifiers, so embedding and similarity code treats
    every model alike. It has no classification head.
    """

    num_features = 512
    latent_shape = (512, 3, 3)

    def __init__(self, depths: tuple[int, int, int, int] = (3, 4, 23, 2), in_chans: int = 1, base: int = 64):
        """``base`` (a multiple of 16) scales every layer's width: 64 is TorchXRayVision's layout, smaller
        values give the same tree with ``base / 64`` of the channels (a model small enough to train on a CPU)."""
        super().__init__()
        if base <= 0 or base % 16:
            raise InvalidArgument(f"the autoencoder's base width must be a positive multiple of 16, got {base}")
        self.in_chans = in_chans
        self.num_features = 8 * base
        self.latent_shape = (8 * base, 3, 3)
        self.conv1 = nn.Conv2d(in_chans, base, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        channels = base
        encoder = []
        for width, depth, stride in zip((base, 2 * base, 4 * base, 2 * base), depths, (1, 2, 2, 6), strict=True):
            layer, channels = self._down(channels, width, depth, stride)
            encoder.append(layer)
        self.layer1, self.layer2, self.layer3, self.layer4 = encoder
        decoder: list[nn.Sequential] = []
        for width, depth in zip((2 * base, base, base // 2, base // 4), reversed(depths), strict=True):
            layer, channels = self._up(channels, width, depth, 6 if not decoder else 2)
            decoder.append(layer)
        self.uplayer1, self.uplayer2, self.uplayer3, self.uplayer4 = decoder
        top = _conv_bn(nn.ConvTranspose2d(channels, base, kernel_size=1, stride=2, output_padding=1, bias=False), base)
        self.uplayer_top = _Block(channels, base, 1, 2, up=True, shortcut=top, name="upsample")
        self.conv1_1 = nn.ConvTranspose2d(base, in_chans, kernel_size=1, stride=1, bias=False)

    @staticmethod
    def _down(cin: int, width: int, depth: int, stride: int) -> tuple[nn.Sequential, int]:
        cout = width * 4
        shortcut = None
        if stride != 1 or cin != cout:
            shortcut = _conv_bn(nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False), cout)
        blocks = [_Block(cin, width, 4, stride, shortcut=shortcut)]
        blocks += [_Block(cout, width, 4) for _ in range(depth - 1)]
        return nn.Sequential(*blocks), cout

    @staticmethod
    def _up(cin: int, width: int, depth: int, stride: int) -> tuple[nn.Sequential, int]:
        """``depth - 1`` width-preserving blocks (expansion 4), then one that halves channels and upsamples."""
        cout = width * 2
        shortcut = _conv_bn(nn.ConvTranspose2d(cin, cout, kernel_size=1, stride=stride, output_padding=1, bias=False), cout)
        blocks = [_Block(cin, width, 4, up=True, name="upsample") for _ in range(depth - 1)]
        blocks.append(_Block(cin, width, 2, stride, up=True, shortcut=shortcut, name="upsample"))
        return nn.Sequential(*blocks), cout

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans or tuple(x.shape[-2:]) != (AE_INPUT_SIZE, AE_INPUT_SIZE):
            raise InvalidArgument(
                f"the autoencoder takes (N, {self.in_chans}, {AE_INPUT_SIZE}, {AE_INPUT_SIZE}) inputs, got {tuple(x.shape)}; "
                f"resize films to {AE_INPUT_SIZE} px (cxrkit.preprocess.model_input does)"
            )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent map ``(N, 512, 3, 3)`` of films ``(N, 1, 224, 224)``."""
        self._check(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Image ``(N, 1, 224, 224)`` in the input's [-1024, 1024] scale from a latent map."""
        x = self.uplayer4(self.uplayer3(self.uplayer2(self.uplayer1(z))))
        return self.conv1_1(self.uplayer_top(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The latent map (the model surface's "last feature map", e.g. for CAM-style tools)."""
        return self.encode(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x`` (same shape and scale)."""
        return self.decode(self.encode(x))


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """TorchXRayVision's keys are this module's keys; drop only a ``module.`` prefix left by DataParallel."""
    if state_dict and all(key.startswith("module.") for key in state_dict):
        return {key[len("module."):]: value for key, value in state_dict.items()}
    return dict(state_dict)


def _no_head(num_classes: int, drop_rate: float) -> None:
    if num_classes:
        raise Unavailable("an autoencoder has no classification head; its card lists no labels")
    if drop_rate:
        raise InvalidArgument("an autoencoder has no dropout; train it with drop_rate 0")


@register_model("resnet101_ae", input_size=AE_INPUT_SIZE, family="autoencoder", filter_fn=checkpoint_filter_fn,
                task="reconstruction")
def resnet101_ae(num_classes: int = 0, in_chans: int = 1, drop_rate: float = 0.0) -> ResNetAE:
    """ResNet-101 autoencoder (TorchXRayVision's "101-elastic" layout), 224 px, 512x3x3 latent."""
    _no_head(num_classes, drop_rate)
    return ResNetAE((3, 4, 23, 2), in_chans=in_chans)


@register_model("small_resnet_ae", input_size=AE_INPUT_SIZE, family="autoencoder", filter_fn=checkpoint_filter_fn,
                task="reconstruction")
def small_resnet_ae(num_classes: int = 0, in_chans: int = 1, drop_rate: float = 0.0) -> ResNetAE:
    """Small ResNet autoencoder (2-2-2-2 blocks, a quarter of the channels), 224 px, 128x3x3 latent; trains on a CPU."""
    _no_head(num_classes, drop_rate)
    return ResNetAE((2, 2, 2, 2), in_chans=in_chans, base=16)
