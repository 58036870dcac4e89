"""ViT's patch-embedding stem and transformer encoder block, on tokens.

The stem cuts the image into patches, embeds each with one strided convolution, puts a
class token in front and adds a learned position embedding: ``N x (1 + h*w) x C``
tokens, the class token being the one prefix token (``registry_core.Stem``'s token
contract). Each block is pre-norm self-attention and a GELU MLP, each with its
residual. Submodules carry timm's names (``proj``, ``cls_token``, ``pos_embed``,
``norm1``, ``attn.qkv``, ...), so timm's checkpoints convert by renaming prefixes; the
query, key and value projections are one linear layer, laid out as torchvision's
``in_proj_weight``. Initialisation is torchvision's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from registry_core import Block, Stem

NORM_EPS = 1e-6


class PatchEmbedStem(Stem):
    """Patches of ``patch_size`` pixels embedded by a ``patch_size``-strided convolution,
    a class token, and position embeddings for an ``image_size`` image (so the model
    takes that size only), then dropout."""

    output_format = "NLC"
    prefix_tokens = 1

    def __init__(self, in_chans: int, out_channels: int = 768, patch_size: int = 16, image_size: int = 224,
                 dropout: float = 0.0):
        super().__init__(in_chans, out_channels, reduction=patch_size)
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.proj = nn.Conv2d(in_chans, out_channels, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, out_channels))
        self.pos_embed = nn.Parameter(torch.empty(1, 1 + (image_size // patch_size) ** 2, out_channels))
        self.drop = nn.Dropout(dropout)

    def init_weights(self) -> None:
        """torchvision's: the patch convolution from a truncated normal of std sqrt(1 / fan-in),
        zero bias; a zero class token; position embeddings from a normal of std 0.02."""
        fan_in = self.proj.in_channels * self.proj.kernel_size[0] * self.proj.kernel_size[1]
        nn.init.trunc_normal_(self.proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.proj.bias)
        nn.init.zeros_(self.cls_token)
        nn.init.normal_(self.pos_embed, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.drop(x + self.pos_embed)


class SelfAttention(nn.Module):
    """Multi-head self-attention: one linear layer for queries, keys and values, scaled
    dot-product attention per head, an output projection."""

    def __init__(self, dim: int, num_heads: int, attention_dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"{dim} channels do not split into {num_heads} heads")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(x).unflatten(-1, [3, self.num_heads, self.head_dim]).permute(2, 0, 3, 1, 4).unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attention_dropout if self.training else 0.0)
        return self.proj(x.transpose(1, 2).flatten(2))


class Mlp(nn.Module):
    """Linear, GELU, dropout, linear, dropout."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class EncoderBlock(Block):
    """``x + dropout(attention(norm1(x)))``, then ``x + mlp(norm2(x))``: a pre-norm
    transformer block, keeping the token count and width (stride 1)."""

    input_format = output_format = "NLC"

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, num_heads: int, mlp_dim: int,
                 dropout: float = 0.0, attention_dropout: float = 0.0):
        super().__init__(in_channels, out_channels, stride)
        if out_channels != in_channels or stride != 1:
            raise ValueError(f"a transformer block keeps its tokens: got {in_channels} -> {out_channels} channels, "
                             f"stride {stride}")
        self.norm1 = nn.LayerNorm(in_channels, eps=NORM_EPS)
        self.attn = SelfAttention(in_channels, num_heads, attention_dropout)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(in_channels, eps=NORM_EPS)
        self.mlp = Mlp(in_channels, mlp_dim, dropout)

    def init_weights(self) -> None:
        """torchvision's: Xavier-uniform query/key/value and MLP weights, zero query/key/value
        and output biases, MLP biases from a normal of std 1e-6, the output projection as
        PyTorch makes it, norms at weight 1 and bias 0."""
        nn.init.xavier_uniform_(self.attn.qkv.weight)
        nn.init.zeros_(self.attn.qkv.bias)
        nn.init.zeros_(self.attn.proj.bias)
        for layer in (self.mlp.fc1, self.mlp.fc2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.normal_(layer.bias, std=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.mlp(self.norm2(x))
