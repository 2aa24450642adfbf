from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kuzet.audit import merkle


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962's recursive definition, for comparison."""
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_domain_separation() -> None:
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.leaf_hash(a + b) != merkle.node_hash(a, b)
    assert merkle.root([]) == merkle.EMPTY_ROOT


@given(st.integers(1, 70))
def test_root_matches_rfc_definition(n: int) -> None:
    leaves = _leaves(n)
    assert merkle.root(leaves) == _reference_root(leaves)


@given(st.integers(1, 70), st.data())
def test_inclusion_proofs_verify_and_reject_forgeries(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    root = merkle.root(leaves)
    i = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(i, leaves)
    assert merkle.verify_inclusion(i, n, leaves[i], proof, root)
    assert not merkle.verify_inclusion(i, n, merkle.leaf_hash(b"forged"), proof, root)
    if n > 1:
        j = (i + 1) % n
        assert not merkle.verify_inclusion(j, n, leaves[i], proof, root) or leaves[i] == leaves[j]
    if proof:
        bad = [*proof[:-1], merkle.leaf_hash(b"x")]
        assert not merkle.verify_inclusion(i, n, leaves[i], bad, root)


@given(st.integers(1, 70), st.data())
def test_consistency_proofs_verify_and_reject_rewrites(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    m = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(m, leaves)
    old_root, new_root = merkle.root(leaves[:m]), merkle.root(leaves)
    assert merkle.verify_consistency(m, n, old_root, new_root, proof)
    if m < n:
        # A rewritten history (one old leaf changed) cannot be shown consistent with the new tree.
        k = data.draw(st.integers(0, m - 1))
        rewritten = list(leaves[:m])
        rewritten[k] = merkle.leaf_hash(b"rewritten")
        assert not merkle.verify_consistency(m, n, merkle.root(rewritten), new_root, proof)


@given(st.integers(0, 130))
def test_frontier_matches_full_root(n: int) -> None:
    frontier = merkle.Frontier()
    leaves = _leaves(n)
    for i, leaf in enumerate(leaves):
        frontier.append(leaf)
        if i % 7 == 0:
            assert frontier.root() == merkle.root(leaves[: i + 1])
    assert frontier.root() == merkle.root(leaves) and frontier.size == n
