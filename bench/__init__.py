"""ganbench's harness: one way to train, time and evaluate any registered GAN."""

__version__ = "0.1.0"
