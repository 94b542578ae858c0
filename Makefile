# A thin front door over .ci/ (which needs no make): `make quickstart`, `make test`.
.PHONY: quickstart test build
quickstart:
	bash .ci/quickstart
test:
	bash .ci/test
build:
	bash .ci/build release
