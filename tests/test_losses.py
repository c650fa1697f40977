"""Pretraining losses: eq. (3)-(4) with the intended orientation, and the L2 ablation."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from attiqa.training.losses import l2_loss, make_pretrain_loss, margin_ranking_loss, mos_loss, plcc_loss

M = 0.1


def test_zero_when_heads_rank_like_labels_with_margin_gaps():
    target = torch.tensor([[0.1, 0.9], [0.5, 0.5], [0.9, 0.1]])
    pred = torch.tensor([[0.0, 0.4], [0.1, 0.2], [0.2, 0.0]])  # same order, gaps >= m
    assert margin_ranking_loss(pred, target, M).item() == 0.0


def test_positive_when_reversed_and_gradient_fixes_the_order():
    target = torch.tensor([[0.1], [0.5], [0.9]])
    pred = torch.tensor([[1.0], [0.5], [0.0]], requires_grad=True)  # exactly reversed
    loss = margin_ranking_loss(pred, target, M)
    # 3 valid pairs, each costs m + |gap|: (0.1+0.5) + (0.1+0.5) + (0.1+1.0), mean over pairs
    assert loss.item() == pytest.approx((0.6 + 0.6 + 1.1) / 3)
    loss.backward()
    g = pred.grad[:, 0]
    assert g[0] > 0 and g[2] < 0  # descent lowers the worst-labelled image, raises the best


def test_matches_torch_margin_ranking_loss_on_enumerated_pairs():
    torch.manual_seed(0)
    n, a = 9, 5
    pred = torch.randn(n, a)
    target = torch.rand(n, a).round(decimals=1)  # coarse labels -> plenty of exact ties
    expected = torch.zeros(())
    for k in range(a):
        x1, x2 = [], []
        for i, j in itertools.permutations(range(n), 2):
            if target[i, k] > target[j, k]:  # every ordered pair with a strict label order, better first
                x1.append(pred[i, k])
                x2.append(pred[j, k])
        y = torch.ones(len(x1))
        expected += F.margin_ranking_loss(torch.stack(x1), torch.stack(x2), y, margin=M)  # mean per attribute
    torch.testing.assert_close(margin_ranking_loss(pred, target, M), expected)


def test_ties_and_nan_labels_contribute_nothing():
    pred = torch.randn(6, 2, requires_grad=True)
    target = torch.full((6, 2), 0.5)
    target[0, 1] = float("nan")
    loss = margin_ranking_loss(pred, target, M)
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(pred.grad) == 0


def test_sum_over_attributes():
    torch.manual_seed(1)
    pred, target = torch.randn(7, 3), torch.rand(7, 3)
    per_attr = [margin_ranking_loss(pred[:, k : k + 1], target[:, k : k + 1], M) for k in range(3)]
    torch.testing.assert_close(margin_ranking_loss(pred, target, M), torch.stack(per_attr).sum())


def test_l2_loss_is_mse_after_sigmoid_and_ignores_nan():
    pred = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    target = torch.tensor([[0.5, 1.0], [float("nan"), 0.0]])
    s = torch.sigmoid(pred)
    expected = ((s[0, 0] - 0.5) ** 2 + (s[1, 0] * 0) + 0) / 1 + ((s[0, 1] - 1) ** 2 + (s[1, 1] - 0) ** 2) / 2
    torch.testing.assert_close(l2_loss(pred, target), expected)


def test_make_pretrain_loss():
    pred, target = torch.randn(5, 5), torch.rand(5, 5)
    torch.testing.assert_close(
        make_pretrain_loss("ranking", 0.3)(pred, target), margin_ranking_loss(pred, target, 0.3)
    )
    torch.testing.assert_close(make_pretrain_loss("l2")(pred, target), l2_loss(pred, target))
    with pytest.raises(ValueError, match="ranking"):
        make_pretrain_loss("hinge")
    with pytest.raises(ValueError):
        margin_ranking_loss(torch.zeros(3, 2), torch.zeros(3, 5))


def test_plcc_loss_is_one_minus_pearson_and_ignores_scale():
    torch.manual_seed(2)
    target = torch.rand(16)
    pred = target + 0.3 * torch.randn(16)
    r = torch.corrcoef(torch.stack([pred, target]))[0, 1]
    torch.testing.assert_close(plcc_loss(pred, target), 1 - r)
    torch.testing.assert_close(plcc_loss(3.0 * pred - 7.0, target), 1 - r)  # positive affine: unchanged
    torch.testing.assert_close(plcc_loss(-pred, target), 1 + r)
    assert plcc_loss(2 * target + 1, target).item() == pytest.approx(0.0, abs=1e-6)


def test_plcc_loss_of_a_constant_batch_is_zero_with_a_gradient_path():
    pred = torch.full((4,), 0.5, requires_grad=True)
    loss = plcc_loss(pred, torch.rand(4))
    loss.backward()
    assert loss.item() == 0.0 and pred.grad is not None and torch.count_nonzero(pred.grad) == 0
    assert plcc_loss(torch.rand(1), torch.rand(1)).item() == 0.0


def test_mos_loss_adds_the_weighted_correlation_term_to_the_mse():
    pred, target = torch.rand(8), torch.rand(8)
    torch.testing.assert_close(mos_loss(pred, target), F.mse_loss(pred, target))
    torch.testing.assert_close(
        mos_loss(pred, target, 0.25), F.mse_loss(pred, target) + 0.25 * plcc_loss(pred, target)
    )
