module ramp.dev/testcluster/node/demoapp

go 1.26.0
