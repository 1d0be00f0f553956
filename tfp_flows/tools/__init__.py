"""After-run tools, as library functions: pictures of samples and densities (`pictures`),
latent-space tools (`latent`) and baselines (`baselines`). They import nothing above the models
and dequantization; the commands that draw a run's figures from its workdir are in
`tfp_flows.run.figures`."""
