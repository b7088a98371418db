"""Every user mistake the command line can meet gives exit status 2 and one line on stderr,
``cnncore: error: ...``, naming the problem: no traceback, and no time spent training first.

One table covers each subcommand (train, eval, predict, summary) and every path or argument
it reads: data files of each format (too small, empty, wrong keys, mis-typed or non-finite
arrays, bad labels, damaged archives, decompression bombs), checkpoints (folders, missing,
corrupt, foreign, non-JSON or inconsistent metadata), output paths that cannot be written,
and numbers out of range. Each case runs in-process through ``cli.main(argv)``: an uncaught
exception (what printed a traceback) fails it. Errors argparse finds itself keep argparse's
form (its usage, then ``cnncore <command>: error: argument ...``). A loss that becomes NaN or
infinite while training is exit status 3, naming the epoch and step.
"""
import json
import os
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from cnncore import cli, io

CASES = {}


def case(pattern, *, command="train"):
    """Register ``build(tmp_path, checkpoint) -> argv`` as a case whose one-line error must
    match ``pattern``."""
    def register(build):
        CASES[build.__name__] = (build, pattern)
        return build
    return register


def images(n=40, size=16, channels=1, seed=0):
    return np.random.default_rng(seed).random((n, channels, size, size)).astype(np.float32)


def labels(n=40):
    return np.arange(n) % 2


def npz(tmp, name="d.npz", **arrays):
    p = tmp / name
    np.savez(p, **arrays)
    return str(p)


def train(tmp, data, *more):
    return ["train", "--data", data, "--epochs", "1", "--no-progress", "--no-plot",
            "--out", str(tmp / "out"), *more]


def png_header(width, height):
    """A PNG declaring width x height gray pixels and holding none (a bomb's header)."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def save_png(path, arr):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def image_folder(tmp, per_class=3, size=16):
    root = tmp / "imgs"
    for cls in ("a", "b"):
        for i in range(per_class):
            save_png(root / cls / f"{i}.png", np.full((size, size), 40 * i, np.uint8))
    return root


def idx_bytes(array):
    head = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(">u1").tobytes()


def mnist_folder(tmp, cut_images=False, n_labels=None):
    root = tmp / "mnist"
    root.mkdir()
    for prefix, n in (("train", 10), ("t10k", 4)):
        raw = idx_bytes(np.zeros((n, 16, 16), np.uint8))
        (root / f"{prefix}-images-idx3-ubyte").write_bytes(raw[:-7] if cut_images else raw)
        (root / f"{prefix}-labels-idx1-ubyte").write_bytes(
            idx_bytes(np.arange(n_labels or n) % 2))
    return str(root)


def edited_checkpoint(tmp, checkpoint, *, obj=None, **meta):
    """The trained checkpoint saved again with some metadata replaced (None: removed)."""
    saved, old = io.load(checkpoint, with_metadata=True)
    keep = {k: v for k, v in old.items() if k in ("cnncore.model", "cnncore.data",
                                                  "cnncore.report")}
    for k, v in meta.items():
        key = "cnncore." + k
        if v is None:
            keep.pop(key, None)
        else:
            keep[key] = v if isinstance(v, str) else json.dumps(v)
    p = tmp / "edited.safetensors"
    io.save(saved if obj is None else obj, p, metadata=keep)
    return str(p)


def model_meta(checkpoint, **kwargs):
    spec = json.loads(io.load_metadata(checkpoint)["cnncore.model"])
    spec["kwargs"].update(kwargs)
    return spec


def data_meta(checkpoint, **fields):
    info = json.loads(io.load_metadata(checkpoint)["cnncore.data"])
    info.update(fields)
    return info


# --------------------------------------------------------------------------- train: data


@case(r"--data '.*one\.npz': 1 image\(s\) are too few to split into training and test sets "
      r"with --test-fraction 0\.2 \(it leaves no test images\)")
def one_image(tmp, ckpt):
    return train(tmp, npz(tmp, "one.npz", x=images(1), y=labels(1)))


@case(r"two\.npz': 2 image\(s\) are too few to split .* \(it leaves no training images\)")
def all_held_out(tmp, ckpt):
    return train(tmp, npz(tmp, "two.npz", x=images(2), y=[0, 1]), "--test-fraction", "0.9")


@case(r"empty\.npz: no image/label arrays found \(looked for .*; the file has \[\]\)")
def empty_npz(tmp, ckpt):
    return train(tmp, npz(tmp, "empty.npz"))


@case(r"--data '.*zero\.npz' holds no images")
def npz_without_images(tmp, ckpt):
    return train(tmp, npz(tmp, "zero.npz", x=images(0), y=labels(0)))


@case(r"the test set holds no images")
def empty_test_split(tmp, ckpt):
    return train(tmp, npz(tmp, x_train=images(), y_train=labels(), x_test=images(0),
                          y_test=labels(0)))


@case(r"d\.npz: no image/label arrays found .* the file has \['a', 'b'\]\)")
def wrong_keys(tmp, ckpt):
    return train(tmp, npz(tmp, a=images(), b=labels()))


@case(r"d\.npz: 'x' must hold real numbers \(integers or floats\), got dtype <U1")
def string_images(tmp, ckpt):
    return train(tmp, npz(tmp, x=np.full((40, 16, 16), "a"), y=labels()))


@case(r"d\.npz: labels 'y' must be integers, got dtype float64")
def float_labels(tmp, ckpt):
    return train(tmp, npz(tmp, x=images(), y=labels().astype(float)))


@case(r"d\.npz: array 'x' holds Python objects .* \(allow_pickle=False\)")
def object_array(tmp, ckpt):
    return train(tmp, npz(tmp, x=np.array([object()] * 40, object), y=labels()))


@case(r"d\.npz: labels must be class indices >= 0, got -1 \(label of image 0\)")
def negative_label(tmp, ckpt):
    return train(tmp, npz(tmp, x=images(), y=labels() - 1))


@case(r"d\.npz: labels must be class indices below cnncore\.data\.MAX_CLASSES = 1,000,000, got "
      r"1000000000000 \(label of image 3\)")
def huge_label(tmp, ckpt):
    y = labels()
    y[3] = 10**12                  # the audit's file: it used all 24 GB and was killed
    return train(tmp, npz(tmp, x=images(), y=y))


@case(r"d\.npz: images must be finite numbers, but image 3 \(of 40\) holds nan")
def nan_image(tmp, ckpt):
    x = images()
    x[3, 0, 5, 5] = np.nan         # trained to a NaN loss and exited 0
    return train(tmp, npz(tmp, x=x, y=labels()))


@case(r"d\.npz: images must be finite numbers, but image 1 \(of 8\) holds -inf")
def inf_test_image(tmp, ckpt):
    xt = images(8)
    xt[1, 0, 0, 0] = -np.inf
    return train(tmp, npz(tmp, x_train=images(), y_train=labels(), x_test=xt, y_test=labels(8)))


@case(r"--data '.*d\.npz': the images' values are too large to normalise")
def overflowing_images(tmp, ckpt):
    return train(tmp, npz(tmp, x=images() * 1e30, y=labels()))


@case(r"d\.npz: labels must be \(40,\) to match the images, got shape \(30,\)")
def mismatched_lengths(tmp, ckpt):
    return train(tmp, npz(tmp, x=images(), y=labels(30)))


@case(r"d\.npz: labels must be \(40,\) to match the images, got shape \(40, 2\)")
def labels_of_rank_two(tmp, ckpt):
    return train(tmp, npz(tmp, x=images(), y=np.zeros((40, 2), int)))


@case(r"d\.npz: 'x' must be images \(N, H, W\), \(N, C, H, W\) or \(N, H, W, C\), got shape "
      r"\(40, 256\)")
def images_of_rank_two(tmp, ckpt):
    return train(tmp, npz(tmp, x=images().reshape(40, 256), y=labels()))


@case(r"d\.npz: labels must be below the 1 class names given, got 1")
def too_few_class_names(tmp, ckpt):
    return train(tmp, npz(tmp, x=images(), y=labels(), classes=np.array(["only"])))


@case(r"bad\.npz: cannot read as \.npz \(not a zip archive\)")
def not_a_zip(tmp, ckpt):
    (tmp / "bad.npz").write_bytes(b"this is not a zip archive")
    return train(tmp, str(tmp / "bad.npz"))


@case(r"cut\.npz: cannot read as \.npz \(")
def truncated_npz(tmp, ckpt):
    with open(npz(tmp, x=images(), y=labels()), "rb") as f:
        raw = f.read()
    (tmp / "cut.npz").write_bytes(raw[: len(raw) // 2])
    return train(tmp, str(tmp / "cut.npz"))


@case(r"a\.npz: cannot read as \.npz \(it is a single \.npy array")
def npy_file(tmp, ckpt):
    np.save(tmp / "a.npy", images())
    os.rename(tmp / "a.npy", tmp / "a.npz")
    return train(tmp, str(tmp / "a.npz"))


@case(r"bomb\.npz: array 'x' declares shape \(1000000000000, 1, 16, 16\) .* but the archive "
      r"holds 128 bytes for it \(truncated or corrupted\)")
def npz_declaring_a_huge_array(tmp, ckpt):
    import io as _io
    import zipfile
    head = _io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False,
                                                "shape": (10**12, 1, 16, 16)})
    y = _io.BytesIO()
    np.save(y, labels())
    with zipfile.ZipFile(tmp / "bomb.npz", "w") as z:
        z.writestr("x.npy", head.getvalue())
        z.writestr("y.npy", y.getvalue())
    return train(tmp, str(tmp / "bomb.npz"))


@case(r"folder\.npz: is a folder, not an \.npz file")
def npz_that_is_a_folder(tmp, ckpt):
    (tmp / "folder.npz").mkdir()
    return train(tmp, str(tmp / "folder.npz"), "--format", "npz")


@case(r"--data '.*missing\.npz': no such file or folder")
def missing_data(tmp, ckpt):
    return train(tmp, str(tmp / "missing.npz"))


@case(r"--data '.*data\.csv': cannot tell the format; pass --format idx\|npz\|folder")
def unknown_format(tmp, ckpt):
    (tmp / "data.csv").write_text("1,2,3\n")
    return train(tmp, str(tmp / "data.csv"))


@case(r"--data '.*d\.npz': --format idx needs a folder, this is a file")
def idx_format_on_a_file(tmp, ckpt):
    return train(tmp, npz(tmp, x=images(), y=labels()), "--format", "idx")


@case(r"train-images-idx3-ubyte: IDX dimensions \(10, 16, 16\) need 2560 data bytes, the file "
      r"has 2553 \(truncated\)")
def truncated_idx(tmp, ckpt):
    return train(tmp, mnist_folder(tmp, cut_images=True))


@case(r"train-labels-idx1-ubyte: \(7,\) labels for 10 images")
def idx_label_count(tmp, ckpt):
    return train(tmp, mnist_folder(tmp, n_labels=7))


@case(r"imgs: no class sub-folders \(expected root/<class>/<image files>\)")
def folder_without_classes(tmp, ckpt):
    (tmp / "imgs").mkdir()
    return train(tmp, str(tmp / "imgs"))


@case(r"imgs/b/bomb\.png: refused as a possible decompression bomb \(Image size \(3600000000 "
      r"pixels\) exceeds limit")
def folder_with_a_decompression_bomb(tmp, ckpt):
    root = image_folder(tmp)
    (root / "b" / "bomb.png").write_bytes(png_header(60000, 60000))
    return train(tmp, str(root))


@case(r"imgs/a/broken\.png: cannot read the image \(")
def folder_with_a_broken_image(tmp, ckpt):
    root = image_folder(tmp)
    (root / "a" / "broken.png").write_bytes(png_header(16, 16)[:20])
    return train(tmp, str(root))


@case(r"imgs: images have different sizes \[\(1, 16, 16\), \(1, 20, 16\)\]; pass size=")
def folder_with_mixed_sizes(tmp, ckpt):
    root = image_folder(tmp)
    save_png(root / "a" / "tall.png", np.zeros((20, 16), np.uint8))
    return train(tmp, str(root))


# --------------------------------------------------------------------------- train: arguments


@case(r"--num-classes 1 is too few: the data has labels up to 1, so it needs at least 2")
def too_few_classes(tmp, ckpt):
    return train(tmp, npz(tmp, x=images(), y=labels()), "--num-classes", "1")


@case(r"--translate 16 must be smaller than the images \(16x16\)")
def translation_beyond_the_image(tmp, ckpt):
    return train(tmp, npz(tmp, x=images(), y=labels()), "--translate", "16")


@case(r"--input-size 100000: resize: size 99996 for 1797 images of 1x8x8 needs [\d,]+ bytes, "
      r"more than the memory limit")
def enormous_input_size(tmp, ckpt):
    return train(tmp, "digits", "--input-size", "100000")


@case(r"cannot build model lenet5 with .*'input_size': 12.*: lenet5: input_size must be at "
      r"least 16 \(32 or 28 in the paper\), got 12; try --input-size")
def input_too_small_for_the_model(tmp, ckpt):
    return train(tmp, npz(tmp, x=images(size=12), y=labels()))


@case(r"unknown model 'lenet7'; choose one of: ")
def unknown_model(tmp, ckpt):
    return train(tmp, "digits", "--model", "lenet7")


# --------------------------------------------------------------------------- train: outputs


@case(r"--out '.*d\.npz' is a file, not a folder")
def out_is_a_file(tmp, ckpt):
    data = npz(tmp, x=images(), y=labels())
    return train(tmp, data)[:-1] + [data]


@case(r"--out '.*d\.npz/run': cannot create the folder \(Not a directory\)")
def out_below_a_file(tmp, ckpt):
    data = npz(tmp, x=images(), y=labels())
    return train(tmp, data)[:-1] + [data + "/run"]


@case(r"--out '/proc/self': cannot write there \(")
def out_not_writable(tmp, ckpt):
    if not os.path.isdir("/proc/self"):
        pytest.skip("needs /proc")
    return train(tmp, "digits")[:-1] + ["/proc/self"]


@case(r"--out '.*out': '.*checkpoint\.safetensors' is a folder, where the checkpoint goes")
def checkpoint_path_is_a_folder(tmp, ckpt):
    (tmp / "out" / "checkpoint.safetensors").mkdir(parents=True)
    return train(tmp, "digits")


@case(r"--json '.*' is a folder, not a file")
def json_is_a_folder(tmp, ckpt):
    return train(tmp, "digits", "--json", str(tmp))


@case(r"--json '.*nowhere/r\.json': the folder '.*nowhere' does not exist")
def json_in_a_missing_folder(tmp, ckpt):
    return train(tmp, "digits", "--json", str(tmp / "nowhere" / "r.json"))


@case(r"--out '.*out/report\.json' is a folder, not a file")
def report_path_is_a_folder(tmp, ckpt):
    (tmp / "out" / "report.json").mkdir(parents=True)
    return train(tmp, "digits")


# --------------------------------------------------------------------------- eval: checkpoints


def evaluate(ckpt, *more):
    return ["eval", str(ckpt), *more]


@case(r"checkpoint '.*' is a folder, not a checkpoint file")
def checkpoint_is_a_folder(tmp, ckpt):
    return evaluate(tmp)


@case(r"checkpoint '.*nope\.safetensors' does not exist")
def missing_checkpoint(tmp, ckpt):
    return evaluate(tmp / "nope.safetensors")


@case(r"checkpoint '.*cut\.safetensors' is truncated")
def truncated_checkpoint(tmp, ckpt):
    with open(ckpt, "rb") as f:
        raw = f.read()
    (tmp / "cut.safetensors").write_bytes(raw[: len(raw) // 2])
    return evaluate(tmp / "cut.safetensors")


@case(r"checkpoint '.*noise\.safetensors'")
def random_bytes_checkpoint(tmp, ckpt):
    (tmp / "noise.safetensors").write_bytes(np.random.default_rng(0).bytes(4096))
    return evaluate(tmp / "noise.safetensors")


@case(r"checkpoint '.*edited\.safetensors': its cnncore\.model metadata is not valid JSON \(")
def model_metadata_not_json(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, model="{'name': lenet5"))


@case(r"checkpoint '.*edited\.safetensors': its cnncore\.data metadata is not valid JSON \(")
def data_metadata_not_json(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, data="[1, 2"))


@case(r"its cnncore\.model metadata does not describe a model \(expected \{\"name\": \.\.\., "
      r"\"kwargs\": \{\.\.\.\}\}, got \[1, 2\]\)")
def model_metadata_not_a_description(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, model=[1, 2]))


@case(r"its cnncore\.model metadata does not describe a model: unknown model 'lenet7'")
def checkpoint_of_an_unknown_model(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, model={"name": "lenet7", "kwargs": {}}))


@case(r"cannot build the checkpoint's model lenet5 with .*'colour': 'blue'.*: .*colour")
def checkpoint_with_unknown_keywords(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, model=model_meta(ckpt, colour="blue")))


@case(r"num_classes must be an integer in \[1, 1,000,000\], got 1000000000000")
def checkpoint_with_a_huge_class_count(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, model=model_meta(ckpt, num_classes=10**12)))


@case(r"the checkpoint's model lenet5 with .*'input_size': 400000.* (is too large to build|has "
      r"[\d,]+ parameters .*more than the memory limit)")
def checkpoint_of_a_model_too_large(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, model=model_meta(ckpt, input_size=400_000)))


@case(r"cnncore\.data metadata: input_shape must be \[channels, height, width\] of positive "
      r"integers, got \[1, 0, 16\]")
def checkpoint_with_a_bad_input_shape(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, data=data_meta(ckpt, input_shape=[1, 0, 16])))


@case(r"cnncore\.data metadata: input_shape \[1, 1000000, 1000000\] is larger than the memory "
      r"limit")
def checkpoint_with_a_huge_input_shape(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, data=data_meta(ckpt, input_shape=[1, 10**6,
                                                                                   10**6])))


@case(r"cnncore\.data metadata: std must be 1 or 1 finite numbers > 0, got \[0\.0\]")
def checkpoint_with_a_zero_std(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, data=data_meta(ckpt, std=[0.0])))


@case(r"its model lenet5 cannot take its recorded input shape \(1, 20, 20\)")
def checkpoint_whose_shape_does_not_fit(tmp, ckpt):
    return evaluate(edited_checkpoint(tmp, ckpt, data=data_meta(ckpt, input_shape=[1, 20, 20])))


@case(r"checkpoint '.*' has no cnncore\.model metadata \(was it written by 'cnncore train'\?\)")
def foreign_safetensors(tmp, ckpt):
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    (tmp / "foreign.safetensors").write_bytes(struct.pack("<Q", len(header)) + header +
                                              b"\0" * 8)
    return evaluate(tmp / "foreign.safetensors")


@case(r"does not hold a model's state dict \(found a Tensor\)")
def checkpoint_holding_a_tensor(tmp, ckpt):
    from cnncore import Tensor
    return evaluate(edited_checkpoint(tmp, ckpt, obj={"model": Tensor(np.zeros(3, np.float32))}))


@case(r"does not fit model lenet5: ")
def checkpoint_of_another_model(tmp, ckpt):
    from cnncore import models
    return evaluate(edited_checkpoint(tmp, ckpt, obj={"model": models.lenet5().state_dict()}))


@case(r"--data '.*labels5\.npz' has labels up to 5, but the checkpoint's model scores 2 classes")
def eval_labels_beyond_the_model(tmp, ckpt):
    return evaluate(ckpt, "--data", npz(tmp, "labels5.npz", x_test=images(6), y_test=np.arange(6),
                                        x_train=images(6), y_train=np.arange(6)))


@case(r"data images have shape \(3, 16, 16\), the checkpoint's model takes \(1, 16, 16\)")
def eval_data_of_another_shape(tmp, ckpt):
    return evaluate(ckpt, "--data", npz(tmp, x=images(channels=3), y=labels()))


@case(r"--data '.*' holds no images")
def eval_on_no_images(tmp, ckpt):
    return evaluate(ckpt, "--data", npz(tmp, x=images(0), y=labels(0)))


@case(r"--json '.*' is a folder, not a file")
def eval_json_is_a_folder(tmp, ckpt):
    return evaluate(ckpt, "--json", str(tmp))


# --------------------------------------------------------------------------- predict


def predict(ckpt, *more):
    return ["predict", str(ckpt), *more]


@case(r"missing\.png: no such image file")
def predict_a_missing_image(tmp, ckpt):
    return predict(ckpt, str(tmp / "missing.png"))


@case(r": is a folder, not an image file")
def predict_a_folder(tmp, ckpt):
    return predict(ckpt, str(tmp))


@case(r"bomb\.png: refused as a possible decompression bomb \(")
def predict_a_decompression_bomb(tmp, ckpt):
    (tmp / "bomb.png").write_bytes(png_header(100_000, 100_000))
    return predict(ckpt, str(tmp / "bomb.png"))


@case(r"notes\.png: cannot read the image \(")
def predict_a_text_file(tmp, ckpt):
    (tmp / "notes.png").write_text("not an image")
    return predict(ckpt, str(tmp / "notes.png"))


@case(r"--json '.*nowhere/p\.json': the folder '.*nowhere' does not exist")
def predict_json_in_a_missing_folder(tmp, ckpt):
    save_png(tmp / "a.png", np.zeros((16, 16), np.uint8))
    return predict(ckpt, str(tmp / "a.png"), "--json", str(tmp / "nowhere" / "p.json"))


@case(r"checkpoint '.*' is a folder, not a checkpoint file")
def predict_with_a_folder_as_checkpoint(tmp, ckpt):
    save_png(tmp / "a.png", np.zeros((16, 16), np.uint8))
    return predict(tmp, str(tmp / "a.png"))


# --------------------------------------------------------------------------- summary


@case(r"unknown model 'lenet7'; choose one of: ")
def summary_of_an_unknown_model(tmp, ckpt):
    return ["summary", "lenet7"]


@case(r"--input must be comma-separated integers such as 1,3,224,224, got '1,x'")
def summary_input_not_integers(tmp, ckpt):
    return ["summary", "lenet5", "--input", "1,x"]


@case(r"--input must be N,C,H,W with positive sizes, got '1,32,32'")
def summary_input_of_three_sizes(tmp, ckpt):
    return ["summary", "lenet5", "--input", "1,32,32"]


@case(r"--input must be N,C,H,W with positive sizes, got '0,1,32,32'")
def summary_input_of_size_zero(tmp, ckpt):
    return ["summary", "lenet5", "--input", "0,1,32,32"]


@case(r"--input 1,3,1000000,1000000: one sample needs 12,000,000,000,000 bytes, more than the "
      r"memory limit")
def summary_input_beyond_memory(tmp, ckpt):
    return ["summary", "vgg16", "--input", "1,3,1000000,1000000"]


@case(r"model vgg16 with .*'in_channels': 100000000.* (is too large to build|more than the "
      r"memory limit)")
def summary_model_too_large(tmp, ckpt):
    return ["summary", "vgg16", "--input", "1,100000000,1,1"]


@case(r"alexnet cannot take input \(1, 3, 16, 16\): ")
def summary_input_too_small(tmp, ckpt):
    return ["summary", "alexnet", "--input", "1,3,16,16"]


@case(r"--json '.*' is a folder, not a file")
def summary_json_is_a_folder(tmp, ckpt):
    return ["summary", "lenet5", "--json", str(tmp)]


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small LeNet-5 (two classes, 16 x 16 gray inputs) trained for one epoch."""
    tmp = tmp_path_factory.mktemp("ckpt")
    data = npz(tmp, x=images(), y=labels())
    assert cli.main(train(tmp, data)) == 0
    return str(tmp / "out" / "checkpoint.safetensors")


@pytest.mark.parametrize("name", sorted(CASES))
def test_user_mistakes_give_one_line_and_exit_status_2(name, tmp_path, checkpoint, capsys):
    build, pattern = CASES[name]
    argv = build(tmp_path, checkpoint)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:           # any other exception: a traceback
        cli.main(argv)
    out, err = capsys.readouterr()
    assert exit_.value.code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnncore: error: "), err
    assert re.search(pattern, lines[0]), lines[0]
    assert out == ""                                   # nothing ran (or trained) first


@pytest.mark.parametrize("argv, message", [
    (["train", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["train", "--lr", "inf"], "argument --lr: must be a finite number, got inf"),
    (["train", "--lr", "nan"], "argument --lr: must be a finite number, got nan"),
    (["train", "--weight-decay", "inf"], "argument --weight-decay: must be a finite number, got inf"),
    (["train", "--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["train", "--channels", "2"], "argument --channels: invalid choice: 2 (choose from 0, 1, "
                                   "3)"),
    (["train", "--num-classes", "1000001"], "argument --num-classes: must be >= 0 and <= "
                                            "1000000, got 1000001"),
    (["summary", "vgg16", "--num-classes", "10000000000"], "argument --num-classes: must be "
                                                           ">= 0 and <= 1000000, got 10000000000"),
    (["eval", "c.safetensors", "--seed", "-5"], "argument --seed: must be >= 0, got -5"),
    (["predict", "c.safetensors", "a.png", "--top", "0"], "argument --top: must be >= 1, got 0"),
])
def test_argument_errors_keep_argparse_form(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("usage: cnncore ") and "Traceback" not in err
    assert err.splitlines()[-1] == f"cnncore {argv[0]}: error: {message}"


@pytest.mark.parametrize("batch, where", [("8", r"at epoch 1, step 2 of 4 \("),
                                          ("32", r"the test loss became (nan|inf) after epoch 1")])
def test_a_non_finite_loss_stops_training_with_status_3(tmp_path, capsys, batch, where):
    """The data is finite (checked when loaded), so a NaN loss comes from training itself:
    here a learning rate of 1e38. It used to train on and exit 0."""
    data = npz(tmp_path, x=images(), y=labels())
    with pytest.raises(SystemExit) as exit_:
        cli.main(train(tmp_path, data, "--lr", "1e38", "--epochs", "3", "--batch-size", batch))
    err = capsys.readouterr().err
    assert exit_.value.code == cli.EXIT_DIVERGED == 3
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnncore: error: training stopped: the "), err
    assert re.search(where, lines[0]) and "no checkpoint was written" in lines[0]
    assert not (tmp_path / "out" / "checkpoint.safetensors").exists()


def test_exit_statuses_are_documented(capsys):
    for argv in (["--help"], ["train", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "exit status: 0 success; 2 a mistake in the arguments or the input files" in text
        assert "3 training stopped on a NaN or infinite loss" in text
    assert "3 when training stops because the loss became NaN or infinite" in \
        " ".join(cli.__doc__.split())


def test_a_failed_run_leaves_no_empty_output_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(train(tmp_path, npz(tmp_path, x=images(), y=labels() - 1)))
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):                      # --json checked after --out is made
        cli.main(train(tmp_path, "digits", "--json", str(tmp_path / "no" / "r.json")))
    assert not (tmp_path / "out").exists()
    (tmp_path / "out").mkdir()                           # a folder the user made stays
    with pytest.raises(SystemExit):
        cli.main(train(tmp_path, npz(tmp_path, x=images(), y=labels() - 1)))
    assert (tmp_path / "out").is_dir()


def test_the_console_command_prints_one_line_too(tmp_path):
    r = subprocess.run([sys.executable, "-m", "cnncore", "train", "--data",
                        str(tmp_path / "missing.npz")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert r.stderr == f"cnncore: error: --data '{tmp_path / 'missing.npz'}': no such file or " \
                       f"folder\n"


def test_predict_names_classes_a_checkpoint_does_not(tmp_path, capsys):
    """Training with --num-classes above the data's classes records a name for each
    output, so predict never indexes past the names (it raised IndexError)."""
    data = npz(tmp_path, x=images(), y=labels())
    assert cli.main(train(tmp_path, data, "--num-classes", "5")) == 0
    ckpt = tmp_path / "out" / "checkpoint.safetensors"
    info = json.loads(io.load_metadata(ckpt)["cnncore.data"])
    assert info["classes"] == ["0", "1", "2", "3", "4"]
    save_png(tmp_path / "a.png", np.zeros((16, 16), np.uint8))
    capsys.readouterr()
    assert cli.main(["predict", str(ckpt), str(tmp_path / "a.png"), "--top", "5"]) == 0
    # a checkpoint written with fewer names than outputs (older files) names the rest by index
    short = edited_checkpoint(tmp_path, str(ckpt), data=dict(info, classes=["zero"]))
    assert cli.main(["predict", short, str(tmp_path / "a.png"), "--top", "5",
                     "--json", str(tmp_path / "p.json")]) == 0
    top = [name for name, _ in json.loads((tmp_path / "p.json").read_text())[0]["top"]]
    assert sorted(top) == ["1", "2", "3", "4", "zero"]


def test_a_batch_beyond_the_memory_limit_is_a_clear_error(tmp_path, capsys):
    """The model took one sample when it was built; a whole batch the memory limit
    refuses (a ValueError from the core before it allocates) says to use a smaller one."""
    import cnncore
    data = npz(tmp_path, x=images(200), y=labels(200))
    old = cnncore.get_memory_limit()
    cnncore.set_memory_limit(300_000)          # the model and one sample fit, 128 do not
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.main(train(tmp_path, data, "--batch-size", "128", "--no-augment"))
    finally:
        cnncore.set_memory_limit(old)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert re.match(r"cnncore: error: a batch of 128 images does not fit in memory: .*memory "
                    r"limit.*; use a smaller --batch-size$", lines[0]), lines[0]
