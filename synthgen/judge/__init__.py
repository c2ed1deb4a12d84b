"""The judge: a ``SmallCNN`` trained on a data set's real training split and cached per data set.

Shared by two stages, so it lives in neither: sampling's ``--filter judge:T`` keeps images the judge
assigns to their label, and evaluation measures every distance metric in its features.

    load_or_train_judge(data_cfg, judge_cfg) -> Judge   # synthgen.judge.cache
    train_classifier(...), fit(...), accuracy(...)      # synthgen.judge.classifier (training and inference)
    JudgeConfig                                         # synthgen.judge.config (its training recipe)
"""
