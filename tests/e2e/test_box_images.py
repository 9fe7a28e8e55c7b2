"""Boxes on input images other than the last: accepted where they mark the object to
take from that image ("put the cat of image 1 into the box of image 2"), refused with a 400 naming
`bbox_list` and the image everywhere else, in every dialect, before any work."""

from __future__ import annotations

import pytest

from tests.e2e.test_validation import ALL, assert_ok, invalid, send

pytestmark = pytest.mark.store_independent  # box rules are refused or accepted before submit

BOX = [10, 10, 100, 100]


@pytest.mark.parametrize("dialect", ALL)
def test_a_box_on_an_earlier_image_without_a_put_is_refused_naming_the_image(server, dialect):
    resp = send(server, dialect, images=2, prompt="make it blue", bbox_list=[[BOX], []])
    message = invalid(resp, dialect, "bbox_list")
    assert "image 1 has boxes" in message and "image 2" in message


def test_of_image_k_as_a_place_is_not_a_source(server):
    resp = send(server, "dashscope", images=2, bbox_list=[[BOX], [BOX]],
                prompt="put a red balloon in the box of image 1 and a dog in the box of image 2")
    assert "image 1 has boxes" in invalid(resp, "dashscope", "bbox_list")


@pytest.mark.parametrize("dialect", ALL)
def test_a_box_marking_the_object_to_take_is_accepted(server, dialect):
    resp = send(server, dialect, images=2, prompt="put the cat in the box of image 1 into the box of image 2",
                bbox_list=[[BOX], [BOX]])
    assert_ok(resp, dialect)
