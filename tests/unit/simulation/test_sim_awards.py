"""Awards for a plan: reading a spec, mapping trace tenants to projects (A1), awards from
demand (A2), scaling quotas to the planned cluster (A3), and Helios capacity tables."""

from __future__ import annotations

import pytest

from kizuna.kernel.errors import InvalidRequest
from kizuna.kernel.ids import GpuType, ProjectId
from kizuna.scheduling.model import Quota
from kizuna.simulation.awards import Award, AwardsSpec, split

AWARD_FIELDS = "gpu_hours, project, quotas, shares, tenants"


def problems_of(data: object) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        AwardsSpec.from_mapping(data)
    return caught.value.problems


DOCS_EXAMPLE = {
    "cohort": "program",
    "awards": [
        {"project": "lab-a", "tenants": ["6214e9", "11cb48"], "shares": 3, "quotas": {"V100": 96}},
        {
            "project": "lab-b",
            "tenants": ["b436b2"],
            "quotas": {"V100": {"nominal": 32, "borrowing_limit": 16}},
            "gpu_hours": {"V100": 1000},
        },
    ],
    "default": {"shares": 1, "quotas": {"V100": 0}},
}


# -- reading a spec --------------------------------------------------------------------------


def test_reads_the_documented_example() -> None:
    spec = AwardsSpec.from_mapping(DOCS_EXAMPLE)
    assert spec.cohort == "program"
    assert spec.awards == (
        Award("lab-a", ("6214e9", "11cb48"), 3.0, {"V100": Quota(96, None)}, None),
        Award("lab-b", ("b436b2",), 1.0, {"V100": Quota(32, 16)}, {"V100": 1000.0}),
    )
    assert spec.default == Award("", (), 1.0, {"V100": Quota(0, None)}, None)


def test_defaults_of_a_minimal_spec() -> None:
    """Shares 1, no quotas, no budget, cohort "program", no default; an award without
    tenants stands for the tenant named like its project."""
    spec = AwardsSpec.from_mapping({"awards": [{"project": "p"}]})
    assert spec == AwardsSpec((Award("p", (), 1.0, {}, None),), None, "program")
    assert spec.awards[0].members == ("p",)
    assert isinstance(spec.awards[0].shares, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param("awards", "an awards spec must be a mapping with `awards`", id="text"),
        pytest.param({}, "awards: an awards spec needs a list of awards", id="no-awards"),
        pytest.param(
            {"awards": []}, "awards: an awards spec needs a list of awards", id="empty-awards"
        ),
        pytest.param(
            {"awards": "p1"}, "awards: an awards spec needs a list of awards", id="awards-text"
        ),
    ],
)
def test_refuses_a_spec_without_awards(data: object, message: str) -> None:
    assert problems_of(data) == [message]


P = {"project": "p"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            {"awards": [P], "projects": []},
            "projects: unknown field (known: awards, cohort, default)",
            id="unknown-top-field",
        ),
        pytest.param(
            {"awards": ["p"]}, "awards[0]: an award must be a mapping", id="award-not-a-mapping"
        ),
        pytest.param(
            {"awards": [{**P, "quota": 8}]},
            f"awards[0].quota: unknown field (known: {AWARD_FIELDS})",
            id="unknown-award-field",
        ),
        pytest.param(
            {"awards": [{"shares": 2}]},
            "awards[0].project: required, the project's name",
            id="no-project",
        ),
        pytest.param(
            {"awards": [{"project": ""}]},
            "awards[0].project: required, the project's name",
            id="empty-project",
        ),
        pytest.param(
            {"awards": [{"project": 5}]},
            "awards[0].project: required, the project's name",
            id="project-a-number",
        ),
        pytest.param(
            {"awards": [{**P, "tenants": "t1"}]},
            "awards[0].tenants: must be a list of trace tenant names",
            id="tenants-text",
        ),
        pytest.param(
            {"awards": [{**P, "shares": 0}]},
            "awards[0].shares: must be a positive number (got 0)",
            id="zero-shares",
        ),
        pytest.param(
            {"awards": [{**P, "shares": -1.5}]},
            "awards[0].shares: must be a positive number (got -1.5)",
            id="negative-shares",
        ),
        pytest.param(
            {"awards": [{**P, "shares": "3"}]},
            "awards[0].shares: must be a positive number (got '3')",
            id="shares-text",
        ),
        pytest.param(
            {"awards": [{**P, "shares": True}]},
            "awards[0].shares: must be a positive number (got True)",
            id="shares-bool",
        ),
        pytest.param(
            {"awards": [{**P, "quotas": [8]}]},
            "awards[0].quotas: must map GPU types to {nominal, borrowing_limit}",
            id="quotas-a-list",
        ),
        pytest.param(
            {"awards": [{**P, "quotas": {"H100": "8"}}]},
            "awards[0].quotas.H100: a number of GPUs or {nominal, borrowing_limit}",
            id="quota-text",
        ),
        pytest.param(
            {"awards": [{**P, "quotas": {"H100": True}}]},
            "awards[0].quotas.H100: a number of GPUs or {nominal, borrowing_limit}",
            id="quota-bool",
        ),
        pytest.param(
            {"awards": [{**P, "quotas": {"H100": {"nominal": 8, "limit": 2}}}]},
            "awards[0].quotas.H100.limit: unknown field (known: borrowing_limit, nominal)",
            id="unknown-quota-field",
        ),
        pytest.param(
            {"awards": [{**P, "quotas": {"H100": -8}}]},
            "awards[0].quotas.H100.nominal: must be an integer >= 0 (got -8)",
            id="negative-quota",
        ),
        pytest.param(
            {"awards": [{**P, "quotas": {"H100": {"nominal": 2.5}}}]},
            "awards[0].quotas.H100.nominal: must be an integer >= 0 (got 2.5)",
            id="fractional-nominal",
        ),
        pytest.param(
            {"awards": [{**P, "quotas": {"H100": {"nominal": 8, "borrowing_limit": -1}}}]},
            "awards[0].quotas.H100.borrowing_limit: an integer >= 0, or absent for no limit",
            id="negative-borrowing-limit",
        ),
        pytest.param(
            {"awards": [{**P, "gpu_hours": 100}]},
            "awards[0].gpu_hours: must map GPU types to GPU-hours >= 0",
            id="gpu-hours-a-number",
        ),
        pytest.param(
            {"awards": [{**P, "gpu_hours": {"H100": -1}}]},
            "awards[0].gpu_hours: must map GPU types to GPU-hours >= 0",
            id="negative-gpu-hours",
        ),
        pytest.param(
            {"awards": [{**P, "gpu_hours": {"H100": "10"}}]},
            "awards[0].gpu_hours: must map GPU types to GPU-hours >= 0",
            id="gpu-hours-text",
        ),
        pytest.param(
            {"awards": [{**P, "tenants": ["x"]}, {**P, "tenants": ["y"]}]},
            "awards: the project 'p' is named twice",
            id="duplicate-project",
        ),
        pytest.param(
            {"awards": [{"project": "a", "tenants": ["t"]}, {"project": "b", "tenants": ["t"]}]},
            "awards: tenant 't' belongs to two awards",
            id="tenant-in-two-awards",
        ),
        pytest.param(
            {"awards": [{"project": "a"}, {"project": "b", "tenants": ["a"]}]},
            "awards: tenant 'a' belongs to two awards",
            id="tenant-is-another-awards-implicit-member",
        ),
        pytest.param(
            {"awards": [P], "cohort": ""}, "cohort: must be a non-empty string", id="empty-cohort"
        ),
        pytest.param(
            {"awards": [P], "default": {"project": "x"}},
            "default.project: unknown field (known: gpu_hours, quotas, shares)",
            id="default-names-a-project",
        ),
        pytest.param(
            {"awards": [P], "default": {"shares": 0}},
            "default.shares: must be a positive number (got 0)",
            id="default-zero-shares",
        ),
        pytest.param(
            {"awards": [P], "default": 1},
            "default: an award must be a mapping",
            id="default-not-a-mapping",
        ),
    ],
)
def test_names_each_mistake_by_its_path(data: object, message: str) -> None:
    assert problems_of(data) == [message]


def test_lists_every_problem_at_once() -> None:
    data = {
        "awards": [{"project": "a", "shares": 0}, {"project": "a", "quotas": {"H100": -1}}],
        "cohort": 3,
        "extra": 1,
    }
    assert problems_of(data) == [
        "extra: unknown field (known: awards, cohort, default)",
        "awards[0].shares: must be a positive number (got 0)",
        "awards[1].quotas.H100.nominal: must be an integer >= 0 (got -1)",
        "awards: the project 'a' is named twice",
        "awards: tenant 'a' belongs to two awards",  # both stand for the tenant "a"
        "cohort: must be a non-empty string",
    ]


# -- tenants to projects (A1) -----------------------------------------------------------------


def test_project_of_maps_tenants_to_their_award() -> None:
    spec = AwardsSpec.from_mapping(DOCS_EXAMPLE)
    mapping = spec.project_of(["6214e9", "b436b2", "11cb48"])
    assert {t: mapping[t] for t in ("6214e9", "11cb48", "b436b2")} == {
        "6214e9": "lab-a",
        "11cb48": "lab-a",
        "b436b2": "lab-b",
    }


def test_project_of_gives_unnamed_tenants_a_project_of_their_own_with_a_default() -> None:
    spec = AwardsSpec.from_mapping(DOCS_EXAMPLE)
    mapping = spec.project_of(["6214e9", "zzz", "aaa"])
    assert (mapping["6214e9"], mapping["zzz"], mapping["aaa"]) == ("lab-a", "zzz", "aaa")


def test_project_of_refuses_unnamed_tenants_without_a_default() -> None:
    spec = AwardsSpec.from_mapping({"awards": [{"project": "p", "tenants": ["t"]}]})
    with pytest.raises(InvalidRequest) as caught:
        spec.project_of(["t", "y", "x", "y"])
    assert caught.value.problems == [
        "tenants of the trace have no award and the spec gives no default: x, y"
    ]


def test_project_of_lists_ten_unnamed_tenants_then_counts_the_rest() -> None:
    spec = AwardsSpec.from_mapping({"awards": [{"project": "p"}]})
    tenants = [f"t{n:02d}" for n in range(13)]
    with pytest.raises(InvalidRequest) as caught:
        spec.project_of(tenants)
    shown = ", ".join(tenants[:10])
    assert caught.value.problems == [
        f"tenants of the trace have no award and the spec gives no default: {shown} and 3 more"
    ]


def test_an_award_without_tenants_owns_the_tenant_of_its_name() -> None:
    spec = AwardsSpec.from_mapping({"awards": [{"project": "p"}]})
    assert spec.project_of(["p"]) == {"p": "p"}


def test_a_tenant_named_like_an_award_joins_it_even_if_not_listed() -> None:
    """A1: the award lists tenant t only; a tenant named "p" belongs to award p all the
    same, so no default is needed for it."""
    spec = AwardsSpec.from_mapping({"awards": [{"project": "p", "tenants": ["t"]}]})
    assert spec.project_of(["t", "p"]) == {"t": "p", "p": "p"}
    assert list(spec.projects(["t", "p"])) == ["p"]


def test_projects_carry_quotas_shares_and_budgets_in_gpu_seconds() -> None:
    """lab-b's 1000 GPU-hours are 1000 x 3600 = 3,600,000 GPU-seconds; lab-a has no budget;
    the unnamed tenant "zzz" gets the default's quota and shares as a project of its own."""
    spec = AwardsSpec.from_mapping(DOCS_EXAMPLE)
    projects = spec.projects(["6214e9", "b436b2", "zzz"])
    assert sorted(projects) == ["lab-a", "lab-b", "zzz"]
    lab_a, lab_b, other = (projects[ProjectId(p)] for p in ("lab-a", "lab-b", "zzz"))
    assert (lab_a.id, lab_a.cohort, lab_a.shares) == ("lab-a", "program", 3.0)
    assert lab_a.quotas == {GpuType("V100"): Quota(96, None)}
    assert lab_a.budgets is None
    assert lab_b.quotas == {GpuType("V100"): Quota(32, 16)}
    assert lab_b.budgets == {GpuType("V100"): 3_600_000.0}
    assert (other.id, other.cohort, other.shares) == ("zzz", "program", 1.0)
    assert other.quotas == {GpuType("V100"): Quota(0, None)}


def test_projects_without_a_default_are_the_awards_only() -> None:
    spec = AwardsSpec.from_mapping({"awards": [{"project": "p", "tenants": ["t"]}]})
    assert list(spec.projects(["t", "other"])) == ["p"]


def test_projects_are_in_the_named_cohort() -> None:
    spec = AwardsSpec.from_mapping({"awards": [{"project": "p"}], "cohort": "euro"})
    assert spec.projects(["p"])[ProjectId("p")].cohort == "euro"


def test_a_tenant_named_like_an_awarded_project_does_not_replace_its_award() -> None:
    """Capacity vcA 100, vcB 50; the trace's tenants, busiest first, are vcC, vcB, vcA. So
    vcC joins vcA's award (100 GPUs) and vcB vcB's; vcA is a third tenant, beyond the table.
    The award "vcA" keeps its 100 GPUs, and the tenant vcA joins the award of its name."""
    spec = AwardsSpec.from_capacity({"vcA": 100, "vcB": 50}, "V100", ["vcC", "vcB", "vcA"])
    assert spec.project_of(["vcC", "vcB", "vcA"]) == {"vcC": "vcA", "vcB": "vcB", "vcA": "vcA"}
    projects = spec.projects(["vcC", "vcB", "vcA"])
    assert sorted(projects) == ["vcA", "vcB"]
    assert projects[ProjectId("vcA")].quotas == {GpuType("V100"): Quota(100, None)}
    assert projects[ProjectId("vcA")].shares == 100.0


# -- awards from demand (A2) ------------------------------------------------------------------


def test_from_demand_splits_each_type_by_what_tenants_ask_for() -> None:
    """H100 (10 GPUs): a asks 30 h, b 10 h, c none -> exact 7.5, 2.5, 0 -> floors 7, 2, 0,
    the spare GPU to the largest remainder, a tie of a and b (0.5 each) broken by name: a.
    A100 (3 GPUs): only c asks -> c gets all 3. Shares are the GPU-hours asked; borrowing
    is unlimited."""
    demand = {"a": {"H100": 30.0}, "b": {"H100": 10.0}, "c": {"A100": 5.0}}
    spec = AwardsSpec.from_demand(demand, {GpuType("H100"): 10, GpuType("A100"): 3})
    assert spec.default is None
    assert spec.awards == (
        Award("a", ("a",), 30.0, {"H100": Quota(8, None), "A100": Quota(0, None)}),
        Award("b", ("b",), 10.0, {"H100": Quota(2, None), "A100": Quota(0, None)}),
        Award("c", ("c",), 5.0, {"H100": Quota(0, None), "A100": Quota(3, None)}),
    )


def test_from_demand_quotas_add_up_to_the_cluster_per_type() -> None:
    """Weights 5 : 3 : 2 of 7 GPUs: exact 3.5, 2.1, 1.4 -> floors 3, 2, 1 (6), the spare one
    to the largest remainder (a, 0.5) -> 4, 2, 1; shares add both types' hours."""
    demand = {
        "a": {"H100": 5.0, "A100": 1.0},
        "b": {"H100": 3.0, "A100": 1.0},
        "c": {"H100": 2.0, "A100": 1.0},
    }
    spec = AwardsSpec.from_demand(demand, {GpuType("H100"): 7, GpuType("A100"): 16})
    h100 = {a.project: a.quotas["H100"].nominal for a in spec.awards}
    a100 = {a.project: a.quotas["A100"].nominal for a in spec.awards}
    assert h100 == {"a": 4, "b": 2, "c": 1}
    assert sum(a100.values()) == 16  # 16 / 3: 5.33 each -> 5, 5, 5 and one more: a
    assert a100 == {"a": 6, "b": 5, "c": 5}
    assert [a.shares for a in spec.awards] == [6.0, 4.0, 3.0]


def test_from_demand_gives_a_tenant_asking_nothing_a_tiny_positive_share() -> None:
    spec = AwardsSpec.from_demand({"idle": {}}, {GpuType("H100"): 8})
    (award,) = spec.awards
    assert 0 < award.shares <= 1e-9
    assert award.quotas == {"H100": Quota(0, None)}


def test_from_demand_projects_follow_the_tenants() -> None:
    spec = AwardsSpec.from_demand({"b": {"H100": 1.0}, "a": {"H100": 1.0}}, {GpuType("H100"): 8})
    assert spec.project_of(["a", "b"]) == {"a": "a", "b": "b"}
    assert [a.project for a in spec.awards] == ["a", "b"]


# -- scaling to the planned cluster (A3) ------------------------------------------------------


def test_scale_to_makes_each_types_quotas_add_up_to_the_cluster() -> None:
    """lab-a 96 and lab-b 32 V100 (128) onto 64 GPUs: factor 0.5 -> 48 and 16; lab-b's
    borrowing limit 16 scales alike to 8. Other fields stay."""
    spec = AwardsSpec.from_mapping(DOCS_EXAMPLE).scale_to({GpuType("V100"): 64})
    assert [a.quotas for a in spec.awards] == [{"V100": Quota(48, None)}, {"V100": Quota(16, 8)}]
    assert [a.shares for a in spec.awards] == [3.0, 1.0]
    assert spec.awards[1].gpu_hours == {"V100": 1000.0}
    assert spec.default == AwardsSpec.from_mapping(DOCS_EXAMPLE).default


def test_scale_to_splits_by_largest_remainder_and_rounds_limits() -> None:
    """1 : 1 : 1 onto 10 GPUs: 3.33 each -> 3, 3, 3 and the spare one by name to a; the
    limit 5 x 10/3 = 16.67 rounds to 17."""
    spec = AwardsSpec.from_mapping(
        {
            "awards": [
                {"project": "a", "quotas": {"H100": 1}},
                {"project": "b", "quotas": {"H100": {"nominal": 1, "borrowing_limit": 5}}},
                {"project": "c", "quotas": {"H100": 1}},
            ]
        }
    )
    scaled = spec.scale_to({GpuType("H100"): 10})
    assert [a.quotas["H100"] for a in scaled.awards] == [
        Quota(4, None),
        Quota(3, 17),
        Quota(3, None),
    ]


def test_scale_to_leaves_awards_without_that_type_and_types_without_quota() -> None:
    """Only a has H100 quota (2 -> all 6 GPUs); b has A100 only (untouched: the cluster has
    no A100 listed); the cluster's B200, which no award names, changes nothing; a type whose
    quotas are all 0 cannot be scaled and is left at 0."""
    spec = AwardsSpec.from_mapping(
        {
            "awards": [
                {"project": "a", "quotas": {"H100": 2, "L4": 0}},
                {"project": "b", "quotas": {"A100": 4}},
            ]
        }
    )
    scaled = spec.scale_to({GpuType("H100"): 6, GpuType("B200"): 8, GpuType("L4"): 4})
    assert scaled.awards[0].quotas == {"H100": Quota(6, None), "L4": Quota(0, None)}
    assert scaled.awards[1].quotas == {"A100": Quota(4, None)}


# -- Helios capacity tables -------------------------------------------------------------------


def test_from_capacity_without_tenants_is_one_project_per_entry() -> None:
    """Largest first, ties by name; each entry's GPUs are its nominal quota and its shares;
    no default, so other tenants are an error."""
    spec = AwardsSpec.from_capacity({"vcB": 50, "vcA": 100, "vcC": 50}, "V100")
    assert spec.awards == (
        Award("vcA", ("vcA",), 100.0, {"V100": Quota(100)}),
        Award("vcB", ("vcB",), 50.0, {"V100": Quota(50)}),
        Award("vcC", ("vcC",), 50.0, {"V100": Quota(50)}),
    )
    assert spec.default is None
    with pytest.raises(InvalidRequest):
        spec.project_of(["vcA", "other"])


def test_from_capacity_joins_the_busiest_tenants_to_the_largest_entries() -> None:
    """t1 (busiest) joins vcA (100), t2 vcB (50); vcC has no tenant left and keeps its own
    name; t9, beyond the table, is a project of its own with no quota and one share."""
    spec = AwardsSpec.from_capacity({"vcA": 100, "vcB": 50, "vcC": 10}, "V100", ["t1", "t2"])
    assert [a.members for a in spec.awards] == [("t1",), ("t2",), ("vcC",)]
    assert spec.project_of(["t1", "t2", "t9"]) == {
        "t1": "vcA",
        "t2": "vcB",
        "vcC": "vcC",
        "t9": "t9",
    }
    projects = spec.projects(["t1", "t2", "t9"])
    assert projects[ProjectId("vcA")].quotas == {GpuType("V100"): Quota(100)}
    t9 = projects[ProjectId("t9")]
    assert (t9.quotas, t9.shares) == ({GpuType("V100"): Quota(0)}, 1.0)


# -- split ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        pytest.param(
            10, {"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 4, "b": 3, "c": 3}, id="tie-by-name"
        ),
        pytest.param(7, {"a": 5.0, "b": 3.0, "c": 2.0}, {"a": 4, "b": 2, "c": 1}, id="remainders"),
        pytest.param(4, {"a": 1.0, "b": 3.0}, {"a": 1, "b": 3}, id="exact"),
        pytest.param(5, {"a": 0.0, "b": 0.0}, {"a": 0, "b": 0}, id="all-zero"),
        pytest.param(5, {"a": -2.0, "b": 1.0}, {"a": 0, "b": 5}, id="negative-is-zero"),
        pytest.param(0, {"a": 1.0}, {"a": 0}, id="nothing-to-split"),
        pytest.param(3, {}, {}, id="no-weights"),
    ],
)
def test_split_by_largest_remainder(
    total: int, weights: dict[str, float], parts: dict[str, int]
) -> None:
    assert split(total, weights) == parts
