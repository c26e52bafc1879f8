"""wBCE and permutation-invariant assignment of slots to reference speakers."""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

EPS = 1e-6


def wbce(target: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """-y ln(y_hat) + y_hat: BCE's minimum and gradient sign, with gradients on negatives <= 1."""
    return -target * torch.log(prediction + EPS) + prediction


def slot_targets(activity: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Order the reference tracks to match the slots (Hungarian on mean wBCE).

    activity: (B, N, T) predictions; reference: (B, K, T) speaker tracks, K <= N, all-zero rows
    allowed. Returns (B, N, T): each slot's target, zeros for slots matched to nobody.
    """
    batch, slots, frames = activity.shape
    speakers = reference.shape[1]
    with torch.no_grad():
        # cost[b, n, k] = mean_t wbce(ref[b,k,t], act[b,n,t]) - mean_t wbce(0, act[b,n,t])
        log_act = torch.log(activity + EPS)
        cost = -(torch.bmm(log_act, reference.transpose(1, 2))) / frames
        cost = cost.cpu().numpy()
    targets = torch.zeros_like(activity)
    present = (reference.sum(dim=2) > 0).cpu().numpy()
    for b in range(batch):
        ks = np.flatnonzero(present[b])
        if ks.size == 0:
            continue
        rows, cols = linear_sum_assignment(cost[b][:, ks])
        targets[b, torch.as_tensor(rows)] = reference[b, torch.as_tensor(ks[cols])]
    return targets


def pit_wbce(activity: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    return wbce(slot_targets(activity, reference), activity).mean()
