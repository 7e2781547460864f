"""Receipt books: ranges, token counts, digests and EIP-712 signatures that verify."""

from __future__ import annotations

import hashlib

from eth_account import Account

from node.daemon.receipts import ReceiptBook, receipt_signer
from protocol.eip712 import Domain
from protocol.messages import Hop, Open, PaymentTerms
from protocol.receipts import verify_receipt

COURT = Domain(31337, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
CLIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _open(payment: PaymentTerms | None, every: int = 2) -> Open:
    route = (Hop("a", (), 0, 4), Hop("b", (), 4, 8))
    return Open("ab" * 16, route, 1, b"\7" * 32, 64, payment=payment, receipt_every=every)


def test_receipts_cover_contiguous_step_ranges_and_verify() -> None:
    account = Account.create()
    book = ReceiptBook(
        _open(PaymentTerms(CLIENT, 5)), account.address, b"\7" * 32, receipt_signer(account.key, COURT)
    )
    cut = []
    for step, (positions, payload) in enumerate([(6, b"p"), (1, b"a"), (1, b"b")]):
        book.record(step, positions, payload, None)
        if book.due():
            cut.append(book.cut())
    cut.append(book.cut())
    assert [(r.step_start, r.step_end, r.tokens) for r in cut if r] == [(0, 2, 7), (2, 3, 1)]
    first = cut[0]
    assert first is not None
    assert first.input_digest == hashlib.sha256(b"pa").digest()
    assert (first.layer_start, first.layer_end, first.session_id[:16]) == (4, 8, b"\0" * 16)
    assert all(r is not None and verify_receipt(r.receipt(), r.signature, COURT) for r in cut)
    assert book.earned == 8 * 5
    assert book.cut() is None  # nothing new since the last cut


def test_no_payment_terms_means_no_receipts() -> None:
    account = Account.create()
    book = ReceiptBook(_open(None), account.address, b"\7" * 32, receipt_signer(account.key, COURT))
    book.record(0, 3, b"x", None)
    assert not book.enabled and not book.due() and book.cut() is None
    assert book.total_tokens == 3


def test_each_hop_signs_its_own_quoted_price_not_the_payment_terms_one() -> None:
    # the market quotes hops at different prices and checks each receipt against its hop's price
    account = Account.create()
    route = (Hop("a", (), 0, 4, 1_000), Hop("b", (), 4, 8, 1_500))
    terms = PaymentTerms(CLIENT, 2_500)  # the route's total: what no single hop charges
    receipts = []
    for index in range(2):
        opened = Open("ab" * 16, route, index, b"\7" * 32, 64, payment=terms, receipt_every=4)
        book = ReceiptBook(opened, account.address, b"\7" * 32, receipt_signer(account.key, COURT))
        book.record(0, 6, b"p", None)
        receipts.append(book.cut())
        assert book.earned == 6 * route[index].price_per_token  # type: ignore[operator]
    assert [r.price_per_token for r in receipts if r] == [1_000, 1_500]
    assert all(r is not None and verify_receipt(r.receipt(), r.signature, COURT) for r in receipts)
