"""The scene encoder's ``phrase_grad`` option: phrases embedded by the text encoder without
gradient (a cheaper training step), the layers on top still trained; today's behaviour the default."""

import pytest
import torch

from graphie.errors import InvalidInputError
from graphie.models import GraphieModel, ModelConfig
from graphie.models.encoder import create_encoder
from graphie.models.scene_encoder import SceneBatch, SceneEncoder
from parsers.scene import SceneEdge, SceneGraph, SceneObject


def _graphs():
    objects = [SceneObject("image", box=(0, 0, 100, 100)), SceneObject("man", 0.9, (10, 10, 40, 90)),
               SceneObject("dog", 0.8, (50, 10, 80, 90))]
    return [SceneGraph(objects, [SceneEdge(1, "near", 2)], 100, 100), None,
            SceneGraph(objects[:2], [], 100, 100)]


@pytest.fixture(scope="module")
def text_encoder():
    return create_encoder("minilm", max_length=32)


def _grads_from_object_states(text_encoder, **options):
    """Gradients of a loss on the object states alone: (encoder parameters that got one, the
    scene encoder's geometry gradient)."""
    torch.manual_seed(0)
    scene = SceneEncoder(text_encoder.dim, heads=2, edge_dim=8, **options)
    text_encoder.zero_grad(set_to_none=True)
    objects, mask, _ = scene(SceneBatch.collate(_graphs()), text_encoder.embed_phrases)
    objects[mask].square().sum().backward()
    reached = [name for name, p in text_encoder.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    return reached, scene.geometry.weight.grad


def test_phrase_grad_false_stops_gradient_into_the_encoder_and_the_layers_on_top_still_train(text_encoder):
    reached, geometry = _grads_from_object_states(text_encoder, phrase_grad=False)
    assert reached == []
    assert geometry is not None and geometry.abs().sum() > 0


def test_phrases_carry_gradient_into_the_encoder_by_default(text_encoder):
    reached, geometry = _grads_from_object_states(text_encoder)
    assert "model.embeddings.word_embeddings.weight" in reached
    assert geometry is not None and geometry.abs().sum() > 0


def test_phrase_grad_false_embeds_with_the_same_weights(text_encoder):
    batch = SceneBatch.collate(_graphs())
    states = {}
    for flag in (True, False):
        torch.manual_seed(0)
        scene = SceneEncoder(text_encoder.dim, heads=2, edge_dim=8, phrase_grad=flag).eval()
        states[flag] = scene(batch, text_encoder.embed_phrases)[0]
    assert torch.allclose(states[True], states[False])
    assert states[True].requires_grad and states[False].requires_grad  # the layers on top


@pytest.mark.parametrize("options, message", [
    ({"phrase_grad": "no"}, "scene option 'phrase_grad' must be true or false, got 'no'"),
    ({"phrase_grad": 0}, "scene option 'phrase_grad' must be true or false, got 0"),
    ({"num_layers": 1.5}, "scene option 'num_layers' must be an integer"),
    ({"phrase_gradient": False}, "unknown scene option 'phrase_gradient'; known: "),
])
def test_a_bad_scene_option_is_one_typed_line(options, message):
    with pytest.raises(InvalidInputError) as info:
        ModelConfig.from_dict({"task": "ner", "head": "bio", "scene_options": options}, where="model")
    text = str(info.value)
    assert "\n" not in text and "model.scene_options" in text and message in text
    with pytest.raises(InvalidInputError, match="phrase_grad must be true or false"):
        SceneEncoder(8, phrase_grad="no")


def test_a_saved_model_reloads_with_phrase_grad(tmp_path):
    config = ModelConfig(task="ner", head="bio", entity_types=["PER"], alignment="routed", max_length=32,
                         gnn_layers=0, scene_options={"num_layers": 1, "phrase_grad": False})
    GraphieModel(config).save_pretrained(tmp_path)
    model = GraphieModel.from_pretrained(tmp_path)
    assert model.config.scene_options == {"num_layers": 1, "phrase_grad": False}
    assert model.scene_encoder.phrase_grad is False
    model.train()
    objects, mask, _ = model.scene_encoder(SceneBatch.collate(_graphs()), model.encoder.embed_phrases)
    objects[mask].sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert GraphieModel(ModelConfig(task="ner", head="bio", entity_types=["PER"], alignment="routed",
                                    max_length=32, gnn_layers=0)).scene_encoder.phrase_grad is True
