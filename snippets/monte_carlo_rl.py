r"""Monte Carlo prediction and control (Sutton & Barto, 2nd ed., ch. 5) on tiny tabular tasks.

First-visit and every-visit prediction on the 5-state random walk (Example 6.2, true values
1/6 ... 5/6); Monte Carlo control with exploring starts, and on-policy ε-greedy control, on a
small deterministic maze, checked against value iteration. Sample averages are kept
incrementally: $V \leftarrow V + (G - V)/n$.
"""

# --8<-- [start:imports]
import matplotlib.pyplot as plt
import numpy as np

# --8<-- [end:imports]


# --8<-- [start:random_walk]
N_WALK = 5  # non-terminal states A..E are 1..5; 0 and 6 are terminal
TRUE_V = np.arange(1, N_WALK + 1) / (N_WALK + 1)  # v_π(s) = s/6 for s = 1..5


def random_walk_episode(rng: np.random.Generator, *, start: int = 3):
    """One episode from C: states S_0..S_{T-1} and rewards R_1..R_T (1 only on exiting right)."""
    states, rewards = [], []
    s = start
    while 0 < s <= N_WALK:
        states.append(s)
        s += 1 if rng.random() < 0.5 else -1  # left or right with probability 1/2
        rewards.append(1.0 if s == N_WALK + 1 else 0.0)
    return states, rewards


def discounted_returns(rewards, gamma: float = 1.0) -> np.ndarray:
    """G_t for t = 0..T-1, computed backwards: G_t = R_{t+1} + γ·G_{t+1}, G_T = 0."""
    G = np.zeros(len(rewards))
    g = 0.0
    for t in reversed(range(len(rewards))):
        g = rewards[t] + gamma * g
        G[t] = g
    return G


# --8<-- [end:random_walk]


# --8<-- [start:prediction]
def mc_prediction(
    episodes, *, n_states: int, first_visit: bool, gamma: float = 1.0, v0: float = 0.5
):
    """Sample-average MC prediction. Returns V after each episode, shape (episodes, n_states)."""
    V = np.full(n_states + 2, v0)  # states 1..n_states; v0 is shown until the first visit
    n = np.zeros(n_states + 2)  # how many returns each average holds
    history = []
    for states, rewards in episodes:
        G = discounted_returns(rewards, gamma)
        seen = set()
        for t, s in enumerate(states):
            if first_visit and s in seen:
                continue  # first-visit: only the return after the first S_t = s counts
            seen.add(s)
            n[s] += 1
            V[s] += (G[t] - V[s]) / n[s]  # V_n = V_{n-1} + (G - V_{n-1}) / n
        history.append(V[1:-1].copy())
    return np.array(history)


def rms_curves(*, n_runs: int, n_episodes: int, seed: int = 0):
    """RMS error over the 5 states, averaged over runs; both methods see the same episodes."""
    rng = np.random.default_rng(seed)
    err = {"first": np.zeros(n_episodes), "every": np.zeros(n_episodes)}
    for _ in range(n_runs):
        episodes = [random_walk_episode(rng) for _ in range(n_episodes)]
        for name in err:
            V = mc_prediction(episodes, n_states=N_WALK, first_visit=name == "first")
            err[name] += np.sqrt(((V - TRUE_V) ** 2).mean(axis=1)) / n_runs
    return err


# --8<-- [end:prediction]


# --8<-- [start:maze]
MAZE = (
    "S....",
    "#.##.",
    "...#.",
    ".#.#G",
)  # S start, G goal (terminal), # wall; the free cells form a tree: one shortest path each
ACTIONS = ((-1, 0), (0, 1), (1, 0), (0, -1))  # up, right, down, left
ARROWS = "↑→↓←"


class Maze:
    """Deterministic gridworld: reward -1 per step, bumping into a wall or the edge stays put."""

    def __init__(self, rows=MAZE, width: int = 5):
        text = "".join(rows)
        self.height, self.width = len(text) // width, width
        self.cells = [divmod(i, width) for i, ch in enumerate(text) if ch != "#"]
        self.index = {rc: i for i, rc in enumerate(self.cells)}
        self.start = self.index[divmod(text.index("S"), width)]
        self.goal = self.index[divmod(text.index("G"), width)]
        self.n_states, self.n_actions = len(self.cells), len(ACTIONS)

    def step(self, s: int, a: int):
        r, c = self.cells[s]
        nxt = (r + ACTIONS[a][0], c + ACTIONS[a][1])
        return self.index.get(nxt, s), -1.0  # off the grid or into a wall: stay

    def render(self, policy) -> str:
        grid = [["#"] * self.width for _ in range(self.height)]
        for s, (r, c) in enumerate(self.cells):
            grid[r][c] = "G" if s == self.goal else ARROWS[policy[s]]
        return "\n".join(" ".join(row) for row in grid)


# --8<-- [end:maze]


# --8<-- [start:value_iteration]
def value_iteration(
    maze: Maze, *, epsilon: float = 0.0, policy=None, gamma: float = 1.0, tol=1e-12
):
    r"""q of the best policy (ε=0), the best ε-soft policy (ε>0), or of ε-greedy(policy) if given.

    $q(s,a) = r + \gamma\, v(s')$, $v(s) = (1-\varepsilon)\max_a q(s,a) + \varepsilon\,\mathrm{mean}_a q(s,a)$
    (with a fixed policy, $q(s,\pi(s))$ replaces the max).
    """
    outcomes = [[maze.step(s, a) for a in range(maze.n_actions)] for s in range(maze.n_states)]
    nxt = np.array([[s2 for s2, _ in row] for row in outcomes])  # (S, A) next state
    rew = np.array([[r for _, r in row] for row in outcomes])  # (S, A) reward
    v = np.zeros(maze.n_states)
    for _ in range(100_000):
        q = rew + gamma * v[nxt]  # (S, A); the goal's v stays 0
        best = q.max(axis=1) if policy is None else q[np.arange(maze.n_states), policy]
        v_new = (1 - epsilon) * best + epsilon * q.mean(axis=1)
        v_new[maze.goal] = 0.0
        if np.abs(v_new - v).max() < tol:
            return q
        v = v_new
    raise RuntimeError("value iteration did not converge: does every policy reach the goal?")


# --8<-- [end:value_iteration]


# --8<-- [start:control]
def mc_control(
    maze: Maze,
    rng: np.random.Generator,
    *,
    n_episodes: int,
    exploring_starts: bool,
    epsilon: float = 0.0,
    gamma: float = 1.0,
    max_steps: int = 100,
):
    """First-visit MC control: Monte Carlo ES (ε=0, random S_0, A_0) or on-policy ε-greedy.

    Returns Q, the greedy policy and how many episodes were cut off at max_steps.
    """
    Q = np.zeros((maze.n_states, maze.n_actions))
    n = np.zeros_like(Q)
    policy = np.zeros(maze.n_states, dtype=int)  # greedy action per state (argmax ties → first)
    starts = [s for s in range(maze.n_states) if s != maze.goal]
    n_capped = 0
    for _ in range(n_episodes):
        if exploring_starts:  # every (s, a) has a nonzero chance to begin an episode
            s, a = starts[rng.integers(len(starts))], int(rng.integers(maze.n_actions))
        else:
            s, a = maze.start, None
        trajectory = []
        for _ in range(max_steps):
            if a is None:  # ε-greedy: random action with probability ε, else the greedy one
                explore = epsilon > 0 and rng.random() < epsilon
                a = int(rng.integers(maze.n_actions)) if explore else policy[s]
            s_next, r = maze.step(s, a)
            trajectory.append((s, a, r))
            s, a = s_next, None
            if s == maze.goal:
                break
        else:
            n_capped += 1  # a greedy policy can walk into a wall forever: cap the episode
        first = {}
        for t, (s, a, _) in enumerate(trajectory):
            first.setdefault((s, a), t)
        g = 0.0
        for t in reversed(range(len(trajectory))):
            s, a, r = trajectory[t]
            g = gamma * g + r  # G_t = R_{t+1} + γ·G_{t+1}
            if first[(s, a)] == t:  # first visit of (s, a) in this episode
                n[s, a] += 1
                Q[s, a] += (g - Q[s, a]) / n[s, a]  # sample average, kept incrementally
                policy[s] = int(np.argmax(Q[s]))  # π(s) ← argmax_a Q(s, a)
    return Q, policy, n_capped


# --8<-- [end:control]


# --8<-- [start:plot]
def plot_rms(err: dict, *, n_runs: int):
    fig, ax = plt.subplots(figsize=(5.0, 3.4), layout="constrained")
    x = np.arange(1, len(err["first"]) + 1)
    ax.plot(x, err["first"], label="首次访问 MC")
    ax.plot(x, err["every"], label="每次访问 MC", linestyle="--")
    ax.plot(
        x, err["first"][0] / np.sqrt(x), color="gray", linewidth=1, linestyle=":", label="∝ 1/√n"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([1, 10, 100], ["1", "10", "100"])
    ax.set_xlabel("回合数", fontsize=11)
    ax.set_ylabel(f"RMS 误差（{n_runs} 次平均）", fontsize=11)
    ax.set_title("随机游走：两种 MC 的误差都按约 1/√n 下降", fontsize=11)
    ticks = [0.03, 0.05, 0.1, 0.2, 0.4]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks], minor=False)
    ax.set_yticks([], minor=True)
    ax.tick_params(labelsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=10, loc="lower left")
    return fig


# --8<-- [end:plot]


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    maze = Maze()
    Q, policy, capped = mc_control(maze, rng, n_episodes=3000, exploring_starts=True)
    print(maze.render(policy), capped)
    print(maze.render(value_iteration(maze).argmax(axis=1)))
