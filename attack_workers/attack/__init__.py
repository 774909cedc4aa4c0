"""How an attack is built: the protocols and TextAttack's four parts as this project assembles them.

``protocols`` (the ``PROTOCOLS`` registry and ``AttackParams``) wires a goal function, constraints,
a transformation (``transformation``) and a search (``search``); ``strict`` holds the strict
protocol's word rules, ``identity`` the content hashes of the models, ``attack_version`` the
version of all of this that goes into every attack key. Everything that changes which adversarial
example an attack finds lives here, so a change here is a change of
``attack_version.ATTACK_CODE_VERSION``.
"""
