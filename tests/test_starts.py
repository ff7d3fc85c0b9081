import numpy as np
import pytest
from click.testing import CliRunner

import pixgen
from pixgen.cli import main
from pixgen.config import RunConfig, load_yaml
from pixgen.engine import Run
from pixgen.errors import PixgenError
from pixgen.starts import best_start, candidate_seeds, score, trial_steps


def test_keeps_the_best_scored_start_and_it_is_the_plain_run_of_its_seed(quick: dict, tmp_path) -> None:
    settings = {**quick, "starts": 3, "start_trial": 50}
    result = pixgen.run(**settings, out=str(tmp_path / "out"), progress=False)
    seeds = candidate_seeds(1, 3)
    assert len(set(seeds)) == 3 and seeds[0] == 1 and result.seed in seeds

    scores = {}  # the choice, recomputed: each start's 3 trial steps, scored on the run seed's cutouts
    for seed in seeds:
        run = Run(RunConfig.from_dict({**quick, "seed": seed}))
        for _ in range(3):
            run.step()
        scores[seed] = score(run, 1)
    assert result.seed == min(scores, key=scores.get), scores
    assert len(set(scores.values())) == 3

    plain = pixgen.run(**{**quick, "seed": result.seed}, save=False, progress=False)
    assert np.array_equal(np.asarray(plain.image), np.asarray(result.image))
    assert result.iterations == 6 and len(result.losses) == 6
    saved = load_yaml(tmp_path / "out" / "settings.yaml")
    assert saved["seed"] == result.seed and saved["starts"] == 1
    again = pixgen.run(config=saved, save=False, progress=False)
    assert np.array_equal(np.asarray(again.image), np.asarray(result.image))


def test_one_start_is_the_plain_run(quick: dict) -> None:
    run = best_start(RunConfig.from_dict(quick))
    assert type(run) is Run and run.iteration == 0 and candidate_seeds(7, 1) == [7]


def test_scoring_is_repeatable_and_leaves_the_run_alone(quick: dict) -> None:
    scored, untouched = Run(RunConfig.from_dict(quick)), Run(RunConfig.from_dict(quick))
    scored.step(), untouched.step()
    assert score(scored, 5) == score(scored, 5) != score(scored, 6)
    assert scored.step().loss == untouched.step().loss


def test_trial_length_is_a_share_of_the_run_never_all_of_it() -> None:
    assert trial_steps(RunConfig(iterations=150, start_trial=20)) == 30
    assert trial_steps(RunConfig(iterations=150, start_trial=0)) == 1
    assert trial_steps(RunConfig(iterations=4, start_trial=100)) == 3


@pytest.mark.parametrize(("change", "words"), [
    ({"starts": 0}, "starts must be a finite number >= 1"),
    ({"starts": "many"}, "starts: cannot read 'many' as a whole number"),
    ({"start_trial": 150}, "start_trial must be a finite number between 0 and 100"),
    ({"starts": 2, "iterations": 1}, "needs at least 2 iterations"),
])
def test_bad_starts_settings_are_refused(quick: dict, change: dict, words: str) -> None:
    with pytest.raises(PixgenError, match=words):
        pixgen.run(**{**quick, **change}, save=False, progress=False)


def test_ctrl_c_while_trying_keeps_the_best_start_so_far(quick: dict, monkeypatch) -> None:
    calls = []
    step = Run.step

    def step_then_interrupt(run: Run):
        calls.append(run.seed)
        if len(calls) == 5:  # the second start's second step
            raise KeyboardInterrupt
        return step(run)

    monkeypatch.setattr(Run, "step", step_then_interrupt)
    result = pixgen.run(**{**quick, "starts": 3, "start_trial": 50}, save=False, progress=False)
    assert result.interrupted and result.seed == 1 and result.iterations == 3


def test_cli_starts_reports_the_choice(quick: dict, tmp_path) -> None:
    args = ["run", "--prompt", "a red circle", "--clip", quick["clip"][0], "--size", "48x32", "--iterations", "4",
            "--cutn", "4", "--seed", "3", "--starts", "2", "--start-trial", "50", "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Tried 2 starts for 2 steps each" in result.output
    assert load_yaml(tmp_path / "o" / "settings.yaml")["seed"] in candidate_seeds(3, 2)
