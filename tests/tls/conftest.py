"""TLS test fixtures: a test CA with certificates for 127.0.0.1, ::1 and localhost, and a
second, unrelated CA (a peer that trusts only it must refuse the first one's certificates)."""

from __future__ import annotations

import pytest

from sipha.common.certs import CertFiles, make_certs


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("other-ca"), name="an unrelated CA")
