"""After-run tools: pictures of samples and densities, latent-space tools, baselines."""
