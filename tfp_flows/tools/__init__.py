"""After-run tools: `pictures` of samples and densities, `latent`-space tools and `baselines`;
a run's figure commands are `tfp_flows.run.figures`."""
