"""Training of the shipped networks and checks of their quality: the StyleGAN2 trainer
(``train_gan``) with its factor-balance term (``factor_balance``), the attribute predictor
(``train_predictor``), generator quality against rendered images (``quality``) and the
``shapes3d-disc`` sensor export (``sensor_export``). The networks themselves live in ``models``;
nothing of the benchmark imports this package (the CLI reaches its commands lazily)."""
