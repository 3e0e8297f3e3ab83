"""PT-DiT's attention cost as a share of full self-attention (the paper's Eq. 4), counted in
attention-matrix entries (QK^T and AV each cost entries x head_dim, the same for both models):

    full:    N^2                               every token with every token
    PT-DiT:  2 N T  +  W^2  +  N W             window + shifted window (T tokens each),
                                               proxies among themselves, tokens to proxies
with N tokens, T tokens per window and W = N / T windows (= proxies).

With the paper's ratios, 64 windows at every resolution, this gives 34.4 / 9.8 / 4.7 / 3.5 % at
256 / 512 / 1024 / 2048 px. The paper prints 34.3 / 9.7 / 4.7 / 2.3: the first three are ours
truncated, and 2.3 is what 256 windows ((1,8,8) at 2048 px, 2.37 %) give, not the (1,16,16) that
the paper's text specifies for 2048 px.
"""


def attention_cost_pct(tokens, window_tokens):
    windows = tokens // window_tokens
    pt_dit = 2 * tokens * window_tokens + windows ** 2 + tokens * windows
    return 100.0 * pt_dit / tokens ** 2
