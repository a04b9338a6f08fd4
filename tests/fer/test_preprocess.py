"""Preprocessing: the seed's margin crop, clamped to the frame, grayscale, resized."""

from __future__ import annotations

import numpy as np
import pytest

from fer import FaceBox, InvalidImageError, face_crops, margin_crop


def coordinate_frame(height: int = 200, width: int = 200) -> np.ndarray:
    """Pixel value encodes position, so a crop reveals exactly which rows and columns it took."""
    rows = np.arange(height)[:, None] % 256
    return np.broadcast_to(rows, (height, width)).astype(np.uint8).copy()


def test_margin_crop_is_the_seeds_y_to_17h16_and_x_minus_w32_to_33w32() -> None:
    gray = np.zeros((200, 200), np.uint8)
    crop = margin_crop(gray, FaceBox(32, 16, 64, 64))
    # x: 32 - 64/32 = 30 .. 32 + 33*64/32 = 98; y: 16 .. 16 + 17*64/16 = 84
    assert crop.shape == (68, 68)
    rows = margin_crop(coordinate_frame(), FaceBox(32, 16, 64, 64))
    assert rows[0, 0] == 16 and rows[-1, 0] == 83


def test_margin_crop_is_clamped_at_the_frame_edges() -> None:
    gray = np.zeros((100, 120), np.uint8)
    assert margin_crop(gray, FaceBox(0, 50, 120, 50)).shape == (50, 120)


def test_a_box_outside_the_frame_is_an_error() -> None:
    with pytest.raises(InvalidImageError, match="outside"):
        margin_crop(np.zeros((100, 100), np.uint8), FaceBox(150, 150, 20, 20))


def test_face_crops_are_grayscale_and_resized() -> None:
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, :, 2] = 255  # pure red in BGR
    crops = face_crops(frame, [FaceBox(10, 10, 100, 100), FaceBox(150, 50, 60, 60)], (64, 64))
    assert crops.shape == (2, 64, 64) and crops.dtype == np.uint8
    assert abs(int(crops[0, 5, 5]) - 76) <= 1  # BT.601 luma of red
    as_rgb = face_crops(frame[:, :, ::-1].copy(), [FaceBox(10, 10, 100, 100)], (64, 64), color="rgb")
    assert np.array_equal(as_rgb[0], crops[0])


def test_no_boxes_give_an_empty_batch() -> None:
    assert face_crops(np.zeros((50, 50), np.uint8), [], (48, 48)).shape == (0, 48, 48)
