"""Word lists for nicknames: a memorable, deterministic name for an id (`brisk-otter`).

Never reorder or edit these lists: a nickname is derived from the id by position, and a change
would rename every stored component (tests pin some nicknames).
"""

from __future__ import annotations

__all__ = ["nickname"]

ADJECTIVES = (
    "able amber ample aqua arctic ashen astral atomic autumn azure bold brave breezy brief "
    "bright brisk broad bronze calm candid cheery chilly civic clean clear clever cloudy "
    "coastal cobalt cosmic cozy crimson crisp curious dapper daring dashing deep deft dewy "
    "dusty eager early earthy easy elder electric elegant emerald epic even exact fabled "
    "fair famous fancy fast fearless fern fiery fine firm flint fluent focal fond frank "
    "free fresh frosty gentle giant gilded glad glossy golden grand green hardy hazel "
    "hearty hidden hollow honest humble icy indigo ivory jade jolly jovial keen kind "
    "lively lofty loyal lucid lucky lunar magic major mellow merry mighty misty modest "
    "mossy nimble noble north oaken ocean olive opal open polar proud quick quiet rapid "
    "rare ready regal rosy royal ruby rustic sandy scarlet serene sharp shiny silent "
    "silver simple sleek smooth snowy solar solid sonic spare spry steady stellar stormy "
    "sturdy sunny swift tidy tranquil trusty tender upbeat urban valiant velvet vivid "
    "warm wary wild windy wise witty young zesty"
).split()

NOUNS = (
    "acorn alder anchor antelope apple arrow aspen aurora badger bamboo banyan barley "
    "basil beacon bear beaver beetle birch bison bloom boulder bramble breeze brook "
    "buffalo butterfly cactus camel canyon cardinal caribou cedar cheetah cherry cliff "
    "clover cobra comet condor coral cougar cove coyote crane creek cricket crow cypress "
    "daisy delta dolphin dove dragon dune eagle egret elk elm ember falcon fennel ferret "
    "finch fjord flame fox gazelle gecko geyser ginger glacier grove gull harbor hare "
    "hawk hazel heron hickory horizon hornet husky ibis iris island ivy jackal jaguar "
    "jasmine juniper kestrel kingfisher koala lagoon lantern lark laurel lemur leopard "
    "lichen lily linden lion lotus lynx magpie mallard mango maple marten meadow mesa "
    "mink mole moose moth nebula newt nightjar oak ocelot orca orchid osprey otter owl "
    "panda panther parrot pebble pelican pepper petrel pine plover poppy prairie puffin "
    "quail quartz rabbit raven reed reef ridge river robin rowan saffron sage salmon "
    "sparrow spruce squirrel starling stork summit swallow swan sycamore tapir thistle "
    "thrush tiger topaz tortoise toucan tulip tundra turtle valley violet viper walnut "
    "walrus warbler willow wolf wren yak zebra"
).split()


def nickname(id: str) -> str:
    """`adjective-noun` chosen by two independent slices of the hex id."""
    return f"{ADJECTIVES[int(id[:8], 16) % len(ADJECTIVES)]}-{NOUNS[int(id[8:16], 16) % len(NOUNS)]}"
