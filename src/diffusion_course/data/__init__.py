"""The data: the course's own shapes images and captions, 2-D toy sets, and standard image sets from disk.

    shapes.py             procedural 32×32 shapes with labels, attributes and captions (the course's dataset)
    shape_render.py       the pixels: signed distances, anti-aliasing, backgrounds
    captions.py           full and partial captions, evaluation prompt sets, caption batches for training
    toy.py                seeded 2-D distributions (lesson 02)
    standard_datasets.py  MNIST, Fashion-MNIST and CIFAR-10 from files already on disk (never downloaded unasked)
"""
