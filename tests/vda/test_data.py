"""Loading local files, the built-in MR split, and every kind of bad input."""

import csv
import json

import pytest

from vda.config import DataConfig
from vda.data import DataError, load_task

POS = ["a gripping , beautifully acted film .", "one of the best movies of the year .", "funny , warm and smart ."]
NEG = ["a dull , lifeless mess .", "the plot is boring and predictable .", "a waste of a talented cast ."]


def _csv(path, rows, header=("text", "label"), sep=","):
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=sep)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _rows(n=20):
    return [(POS[i % 3] if i % 2 else NEG[i % 3], "pos" if i % 2 else "neg") for i in range(n)]


def test_single_csv_is_split_80_10_10_with_string_labels(tmp_path):
    task = load_task(DataConfig(dataset=str(_csv(tmp_path / "d.csv", _rows(20)))))
    assert [len(task.splits[s]) for s in ("train", "dev", "test")] == [16, 2, 2]
    assert task.label_names == ("neg", "pos")
    ex = task.splits["train"][0]
    assert ex.label == (1 if ex.text_a in POS else 0) and ex.text_b is None
    assert task.split_hash("train") == load_task(DataConfig(dataset=str(tmp_path / "d.csv"))).split_hash("train")


def test_directory_of_jsonl_pair_files(tmp_path):
    for split in ("train", "dev"):
        with (tmp_path / f"{split}.jsonl").open("w") as f:
            for i in range(6):
                f.write(json.dumps({"s1": POS[i % 3], "s2": NEG[i % 3], "label": i % 2}) + "\n")
    task = load_task(DataConfig(dataset=str(tmp_path), text_columns=("s1", "s2")))
    assert task.is_pair and task.label_names == ("0", "1")
    assert task.splits["dev"][0].text_b in NEG
    assert task.splits["test"] == task.splits["dev"]


def test_tsv_with_explicit_label_names(tmp_path):
    path = _csv(tmp_path / "d.tsv", [(t, lab) for t, lab in _rows(10)], sep="\t")
    task = load_task(DataConfig(dataset=str(path), label_names=("pos", "neg")))
    assert task.label_names == ("pos", "neg")


@pytest.mark.parametrize("content, cfg, fragment", [
    ("sentence,label\nhi,pos\n", {}, "missing column(s) ['text']"),
    ("text,label\n,pos\nok,neg\n", {}, "row 1: column 'text' is empty"),
    ("text,label\nfine,pos\nbad,neg\nmeh,maybe\n", {"label_names": ("pos", "neg")}, "label 'maybe' is not in"),
    ("text,label\nfine,0\nbad,5\n", {}, "integer labels ['0', '5'] are not 0..1"),
    ("text,label\nfine,pos\nbad,pos\n", {}, "only the label(s) ['pos']"),
    ("text,label\n", {}, "no rows"),
    ("text,label\nhi,pos\n", {"text_columns": ("text", "text2")}, "sentence-pair task"),
    ("text,label\na, b,pos\nok,neg\n", {}, "row 1: has a different number of fields"),
    ("text,label\nfine,pos\nmeh,\nbad,neg\n", {}, "row 2: column 'label' is empty"),
    ("text,label\nfine,1\nmeh, \nbad,0\n", {}, "row 2: column 'label' is empty"),
    ("text,label\nfine,pos\nmeh,\nbad,neg\n", {"label_names": ("neg", "pos")}, "row 2: column 'label' is empty"),
])
def test_bad_files_get_clear_errors(tmp_path, content, cfg, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_task(DataConfig(dataset=str(path), **cfg))
    assert fragment in str(err.value) and "bad.csv" in str(err.value)


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ngood,pos\ncaf\xe9 bad,neg\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 3: byte 0xe9 .* not UTF-8; re-encode"):
        load_task(DataConfig(dataset=str(path)))


@pytest.mark.parametrize("record, fragment", [
    ({"text": "meh", "label": None}, "row 2: column 'label' is empty"),
    ({"text": "meh"}, "row 2: has no 'label' column"),
    ({"label": "pos"}, "row 2: has no 'text' column"),
])
def test_jsonl_rows_without_a_label_or_text_are_refused(tmp_path, record, fragment):
    path = tmp_path / "bad.jsonl"
    rows = [{"text": "fine", "label": "pos"}, record, {"text": "bad", "label": "neg"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError) as err:
        load_task(DataConfig(dataset=str(path)))
    assert fragment in str(err.value) and "bad.jsonl" in str(err.value)


def test_a_very_long_natural_review_is_kept_and_truncated_when_encoded(tmp_path, tokenizer, caplog):
    from vda.batching import encode_examples

    review = " ".join(["an", "overlong", "but", "heartfelt", "review"] * 10_000)  # 50k words, 329,999 characters
    path = _csv(tmp_path / "long.csv", [(review, "pos"), *_rows(19)])
    examples = [e for split in load_task(DataConfig(dataset=str(path))).splits.values() for e in split]
    assert review in {e.text_a for e in examples}
    encoded = encode_examples(tokenizer, examples, max_length=32, name="long/all")
    assert encoded.truncated == 1 and max(len(f["input_ids"]) for f in encoded.features) == 32
    assert "1 of 20 inputs are longer than data.max_length=32" in caplog.text


def test_an_absurdly_long_text_is_refused_naming_row_column_and_limit(tmp_path):
    from vda.data import CSV_FIELD_LIMIT, MAX_TEXT_CHARS

    over = _csv(tmp_path / "huge.csv", [("ok", "neg"), ("x " * (MAX_TEXT_CHARS // 2 + 1), "pos")])
    with pytest.raises(DataError, match=r"huge.csv \(all\) row 2: column 'text' has 1,000,001 characters "
                                        r"\(limit 1,000,000\); check the delimiter/quoting"):
        load_task(DataConfig(dataset=str(over)))
    unclosed = tmp_path / "unclosed.csv"  # a quote that never closes swallows the rest of the file
    unclosed.write_text("text,label\nok,neg\n\"" + "x" * (CSV_FIELD_LIMIT + 1) + "\n")
    with pytest.raises(DataError, match=r"unclosed.csv: line \d+: field larger than field limit .* unclosed quote"):
        load_task(DataConfig(dataset=str(unclosed)))


def test_unknown_dataset_and_hub_names(tmp_path):
    with pytest.raises(DataError, match="neither a built-in dataset"):
        load_task(DataConfig(dataset=str(tmp_path / "nope.csv")))
    with pytest.raises(DataError, match="known: hf:glue/mrpc"):
        load_task(DataConfig(dataset="hf:glue/nonexistent"))


def test_overlong_inputs_are_truncated_with_a_counted_warning(tokenizer, caplog):
    from vda.batching import encode_examples
    from vda.data import Example

    examples = [Example("a", "word " * 50, None, 0), Example("b", "short", None, 1)]
    enc = encode_examples(tokenizer, examples, max_length=16, name="toy/train")
    assert enc.truncated == 1 and len(enc.features[0]["input_ids"]) == 16
    assert "1 of 2 inputs are longer than data.max_length=16" in caplog.text


def test_builtin_mr_split_is_fixed_balanced_and_disjoint():
    task = load_task(DataConfig(dataset="mr"))
    sizes = {s: len(v) for s, v in task.splits.items()}
    assert sizes == {"train": 8768, "dev": 1000, "test": 1000}
    for split in ("dev", "test"):
        assert sum(e.label for e in task.splits[split]) == 500
    texts = {s: {e.text_a for e in v} for s, v in task.splits.items()}
    assert not texts["train"] & texts["test"] and not texts["dev"] & texts["test"]
    capped = load_task(DataConfig(dataset="mr", max_train_examples=64, max_eval_examples=32))
    assert len(capped.splits["train"]) == 64 and len(capped.splits["test"]) == 32


def test_extra_training_examples_are_appended_with_label_names(tmp_path):
    data = _csv(tmp_path / "d.csv", _rows(20))
    extra = tmp_path / "adv.jsonl"
    extra.write_text(json.dumps({"text_a": "a dreary , lifeless mess .", "label": "neg"}) + "\n")
    task = load_task(DataConfig(dataset=str(data), extra_train_file=str(extra)))
    assert len(task.splits["train"]) == 17 and task.splits["train"][-1].label == 0
    assert task.splits["train"][-1].id == "d-extra-train-00000"
    extra.write_text(json.dumps({"text_a": "odd", "label": "meh"}) + "\n")
    with pytest.raises(DataError, match="label 'meh' is not in"):
        load_task(DataConfig(dataset=str(data), extra_train_file=str(extra)))
    with pytest.raises(DataError, match="does not exist; generate it"):
        load_task(DataConfig(dataset=str(data), extra_train_file=str(tmp_path / "none.jsonl")))
