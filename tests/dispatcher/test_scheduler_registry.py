import random

import pytest

from sipha.dispatcher.schedulers import (
    Destination,
    Scheduler,
    SchedulerBase,
    available,
    create,
    register,
)
from tests.dispatcher._scheduler_helpers import ALL_NAMES, dests, make


def test_every_documented_algorithm_is_registered() -> None:
    assert set(available()) == ALL_NAMES
    assert available() == sorted(available())


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
def test_create_returns_a_scheduler_of_that_name(name: str) -> None:
    sched = make(name, dests(1, 1))
    assert isinstance(sched, Scheduler)
    assert type(sched).name == name


def test_unknown_name_raises_value_error_listing_known_names() -> None:
    with pytest.raises(ValueError, match="unknown scheduler 'nope'") as info:
        create("nope", dests(1), rng=random.Random(0))
    for name in ALL_NAMES:
        assert name in str(info.value)


def test_unknown_option_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        create("rr", dests(1), rng=random.Random(0), options={"bogus": 1})


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("mh", {"table_size": 1000}),
        ("mh", {"key": "via"}),
        ("sh", {"port": "yes"}),
        ("rweight", {"latency_factor": 1}),
    ],
)
def test_bad_option_values_are_rejected(name: str, options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="option"):
        create(name, dests(1), rng=random.Random(0), options=options)


def test_duplicate_destination_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        create("rr", [Destination("A"), Destination("A")], rng=random.Random(0))
    sched = make("rr", dests(1))
    with pytest.raises(ValueError, match="duplicate"):
        sched.on_destinations_changed(destinations=[Destination("B"), Destination("B")])


def test_registering_a_taken_name_with_another_class_fails() -> None:
    class Impostor(SchedulerBase):
        name = "rr"

    with pytest.raises(ValueError, match="already registered"):
        register(Impostor)
    assert "rr" in available()


def test_registering_a_nameless_class_fails() -> None:
    class Nameless(SchedulerBase):
        pass

    with pytest.raises(ValueError, match="no scheduler name"):
        register(Nameless)
