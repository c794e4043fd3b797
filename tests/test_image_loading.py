"""load_image on every kind of bad or unusual input, all generated here with PIL."""

import io

import numpy as np
import pytest
from PIL import Image

from graphie.errors import ImageError
from parsers.image import load_image, parse_images


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture
def red_blue() -> Image.Image:
    """40×20: left half red, right half blue (orientation and colour are both checkable)."""
    a = np.zeros((20, 40, 3), dtype=np.uint8)
    a[:, :20] = (255, 0, 0)
    a[:, 20:] = (0, 0, 255)
    return Image.fromarray(a)


def test_path_bytes_and_pil_give_the_same_rgb(tmp_path, red_blue):
    path = tmp_path / "x.png"
    red_blue.save(path)
    for src in (path, str(path), path.read_bytes(), bytearray(path.read_bytes()), red_blue):
        image = load_image(src)
        assert image.mode == "RGB" and image.size == (40, 20)
        assert image.getpixel((0, 0)) == (255, 0, 0) and image.getpixel((39, 0)) == (0, 0, 255)


def test_bad_files(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("hello, not a picture")
    cases = {"missing.jpg": "does not exist", "empty.jpg": "empty", "notes.jpg": "not an image", "": "directory"}
    for name, message in cases.items():
        with pytest.raises(ImageError, match=message):
            load_image(tmp_path / name)


def test_empty_bytes_url_and_wrong_type():
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    for url in ("https://example.com/a.jpg", "HTTP://x/y.png", "data:image/png;base64,AAAA"):
        with pytest.raises(ImageError, match="URL.*local path"):
            load_image(url)
    with pytest.raises(ImageError, match="pass a local path"):
        load_image(42)


def test_truncated_jpeg(red_blue):
    data = encode(red_blue.resize((400, 200)), "JPEG", quality=95)
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2])


def test_decompression_bomb_refused_before_decoding():
    data = encode(Image.new("L", (3000, 2000)), "PNG")  # 6 MP, compresses to a few kB
    with pytest.raises(ImageError, match="max_pixels"):
        load_image(data, max_pixels=1_000_000)
    assert load_image(data, max_pixels=None).size == (3000, 2000)
    with pytest.raises(ImageError, match="max_pixels"):
        load_image(Image.new("RGB", (2000, 1000)), max_pixels=1_000_000)


def test_cmyk_jpeg(red_blue):
    image = load_image(encode(red_blue.convert("CMYK"), "JPEG", quality=100))
    assert image.mode == "RGB"
    r, g, b = image.getpixel((5, 10))
    assert r > 200 and g < 60 and b < 60


def test_16_bit_png_is_rescaled_not_clipped():
    a = np.full((10, 10), 32768, dtype=np.uint16)  # mid grey in 16 bits
    data = encode(Image.fromarray(a), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    r, g, b = load_image(data).getpixel((0, 0))
    assert r == g == b and 120 <= r <= 135


def test_float_image():
    image = load_image(Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32), "F"))
    assert 120 <= image.getpixel((0, 0))[0] <= 135


def test_palette_and_transparency(red_blue):
    assert load_image(encode(red_blue.convert("P"), "PNG")).getpixel((0, 0)) == (255, 0, 0)
    rgba = red_blue.convert("RGBA")
    rgba.putpixel((0, 0), (255, 0, 0, 0))  # fully transparent → white background
    image = load_image(encode(rgba, "PNG"))
    assert image.getpixel((0, 0)) == (255, 255, 255) and image.getpixel((1, 0)) == (255, 0, 0)
    la = Image.new("LA", (4, 4), (0, 0))
    assert load_image(la).getpixel((0, 0)) == (255, 255, 255)


def test_exif_rotation_is_applied(red_blue):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    image = load_image(encode(red_blue, "JPEG", quality=100, exif=exif.tobytes()))
    assert image.size == (20, 40)
    top, bottom = image.getpixel((10, 2)), image.getpixel((10, 37))
    assert top[0] > 200 and top[2] < 60      # red (was left) is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    opened = Image.open(io.BytesIO(buf.getvalue()))
    opened.seek(2)  # a PIL image left on a later frame still gives frame 0
    assert load_image(opened).getpixel((4, 4)) == (255, 0, 0)
    assert load_image(buf.getvalue()).getpixel((4, 4)) == (255, 0, 0)


def test_a_bad_image_does_not_stop_a_batch(tmp_path, red_blue):
    class Nothing:
        name = "nothing"

        def detect(self, image):
            return []

    good = tmp_path / "good.png"
    red_blue.save(good)
    graphs = parse_images([good, tmp_path / "missing.png", b"junk", good], Nothing(), features=False)
    assert [g is not None for g in graphs] == [True, False, False, True]
    with pytest.raises(ImageError):
        parse_images([b"junk"], Nothing(), on_error="raise", features=False)
