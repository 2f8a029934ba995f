module bulwark/sentinel-bench-upstream

go 1.19
