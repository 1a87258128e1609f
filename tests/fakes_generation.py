"""Tiny DCGAN runs on the embedded digits for the synthesis tests: small networks, a judge
trained for one epoch, a few batches; each test composes the real config with these."""

from __future__ import annotations

JUDGE = "cnn_digits32_s0"
TINY_GAN = (
    "experiment=synthesis/dcgan_digits",
    "model.generator.nz=8",
    "model.generator.ngf=8",
    "model.discriminator.ndf=8",
    "task.module.judge.width=4",
    "task.module.judge.feature_dim=8",
    "task.module.judge.train_epochs=1",
    "task.module.judge.train_batch_size=128",
    "task.module.grid_size=4",
    "data.batch_size=16",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
    "logger=csv",
)
"""A 1-epoch run: 2 training batches of 16, val on 16 real images, test on 32."""
