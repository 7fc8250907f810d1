"""Molmo 2's config in allenai's remote-code layout: the classes vLLM's Molmo2 reads a checkpoint's config with.

vLLM implements Molmo 2 against allenai's original checkpoints and reads their config names:
``config.vit_config`` (``image_default_input_size``, ``image_patch_size``, ``image_num_pos``, ...),
``adapter_config.vit_layers`` and ``pooling_attention_mask``, ``text_config.rope_theta``, ``use_qk_norm``,
``qkv_bias`` and ``layer_norm_eps``, and ``image_col_id`` / ``image_low_res_id`` at the top. transformers'
built-in ``Molmo2Config`` keeps other names and turns ``vit_config`` into ``vision_config`` when it loads one,
so it cannot hand vLLM those fields. A folder vLLM runs therefore carries this file as
``configuration_molmo2.py`` and names its :class:`Molmo2Config` in config.json's ``auto_map``; vLLM loads it
with ``trust_remote_code=True`` (as vidlake starts it). transformers' own loaders, vidlake's ``hf`` engine among
them, do not run remote code for a model type they know: they read the same config.json through the built-in
class, which still accepts these names (vidlake/models/vllm_layout.py).

Copied into checkpoints as it is, so it imports nothing but transformers. The defaults are those of vidlake's
``8b`` config (vidlake/models/full_size.py: Molmo2-8B's shapes on transformers' ``Molmo2Config`` defaults); a
config.json written by :func:`vidlake.models.vllm_layout.vllm_config` states every field, so they only fill a
class built bare.
"""

from transformers import PretrainedConfig

__all__ = ["Molmo2AdapterConfig", "Molmo2Config", "Molmo2TextConfig", "Molmo2VitConfig"]


class Molmo2VitConfig(PretrainedConfig):
    """The vision transformer: its width, its blocks, and the image size its position embeddings cover."""

    model_type = "molmo2_vit"

    def __init__(self, hidden_size=1152, intermediate_size=4304, num_hidden_layers=25, num_attention_heads=16,
                 num_key_value_heads=16, head_dim=72, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6,
                 image_default_input_size=(378, 378), image_patch_size=14, image_num_pos=729, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.image_default_input_size = list(image_default_input_size)
        self.image_patch_size = image_patch_size
        self.image_num_pos = image_num_pos


class Molmo2AdapterConfig(PretrainedConfig):
    """The vision-to-text adapter: which ViT blocks' outputs it pools (``vit_layers``) and its projector."""

    model_type = "molmo2_adapter"

    def __init__(self, vit_layers=(24, 18), pooling_attention_mask=True, hidden_size=1152, num_attention_heads=16,
                 num_key_value_heads=16, head_dim=72, hidden_act="silu", intermediate_size=12288,
                 text_hidden_size=4096, **kwargs):
        super().__init__(**kwargs)
        self.vit_layers = list(vit_layers)
        self.pooling_attention_mask = pooling_attention_mask
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim
        self.hidden_act = hidden_act
        self.intermediate_size = intermediate_size
        self.text_hidden_size = text_hidden_size


class Molmo2TextConfig(PretrainedConfig):
    """The language model (Qwen3-shaped). ``rope_theta`` is also kept inside ``rope_parameters``, where
    transformers 5 and vLLM look for it first."""

    model_type = "molmo2_text"

    def __init__(self, hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                 vocab_size=151936, additional_vocab_size=128, qkv_bias=False, num_hidden_layers=36,
                 intermediate_size=12288, hidden_act="silu", max_position_embeddings=36864, rope_theta=10000.0,
                 rope_parameters=None, rope_scaling_layers=None, use_qk_norm=True, qk_norm_type="qwen3",
                 layer_norm_eps=1e-6, norm_after=False, tie_word_embeddings=False, **kwargs):
        # set before PretrainedConfig's __init__, which standardises rope_parameters
        self.rope_theta = rope_theta
        self.rope_parameters = rope_parameters or {"rope_type": "default", "rope_theta": rope_theta}
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim
        self.vocab_size = vocab_size
        self.additional_vocab_size = additional_vocab_size
        self.qkv_bias = qkv_bias
        self.num_hidden_layers = num_hidden_layers
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.rope_scaling_layers = list(rope_scaling_layers or range(num_hidden_layers))
        self.use_qk_norm = use_qk_norm
        self.qk_norm_type = qk_norm_type
        self.layer_norm_eps = layer_norm_eps
        self.norm_after = norm_after


class Molmo2Config(PretrainedConfig):
    """The whole model: the three sub-configs and the ids of Molmo 2's image and frame tokens."""

    model_type = "molmo2"
    sub_configs = {"vit_config": Molmo2VitConfig, "adapter_config": Molmo2AdapterConfig,
                   "text_config": Molmo2TextConfig}

    def __init__(self, vit_config=None, adapter_config=None, text_config=None, image_start_token_id=151936,
                 image_end_token_id=151937, image_patch_id=151938, image_col_id=151939,
                 low_res_image_start_token_id=151940, image_low_res_id=151942, frame_start_token_id=151943,
                 frame_end_token_id=151944, tie_word_embeddings=False, **kwargs):
        self.vit_config = _sub(Molmo2VitConfig, vit_config)
        self.adapter_config = _sub(Molmo2AdapterConfig, adapter_config)
        self.text_config = _sub(Molmo2TextConfig, text_config)
        self.image_start_token_id = image_start_token_id
        self.image_end_token_id = image_end_token_id
        self.image_patch_id = image_patch_id
        self.image_col_id = image_col_id
        self.low_res_image_start_token_id = low_res_image_start_token_id
        self.image_low_res_id = image_low_res_id
        self.frame_start_token_id = frame_start_token_id
        self.frame_end_token_id = frame_end_token_id
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)


def _sub(cls, value):
    """A sub-config from what config.json holds (a dict), or the object itself; None: the defaults."""
    return value if isinstance(value, cls) else cls(**(value or {}))
